"""The generator export traces (export/inference_form.py) computes what the trained one does."""

from collections import Counter

import onnx
import onnxruntime
import pytest
import torch

from cgan_export.inference_form import FoldedConvGenerator, inference_form
from cgan_export.quantize import quantize_int8
from cgan_train.config import TrainConfig
from cgan_train.models import build_generator
from tests.conftest import export_untrained


def _random_conv_generator(image_size: int) -> torch.nn.Module:
    """A conv generator with random weights and batch-norm statistics: every folded term matters."""
    torch.manual_seed(image_size)
    generator = build_generator(TrainConfig(design="conv", image_size=image_size))
    with torch.no_grad():
        for parameter in generator.parameters():
            parameter.normal_(0, 0.1)
        for norm in (generator.norm_start.norm, generator.norm_half.norm):
            norm.running_mean.normal_(0, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
    return generator.eval()


@pytest.mark.parametrize("image_size", [28, 12])
def test_folded_conv_generator_draws_the_same_images(image_size):
    generator = _random_conv_generator(image_size)
    folded = inference_form(generator)
    assert isinstance(folded, FoldedConvGenerator)
    noise, labels = torch.randn(64, 100), torch.arange(64) % 10
    with torch.no_grad():
        expected, actual = generator(noise, labels), folded(noise, labels)
    assert actual.shape == expected.shape == (64, 1, image_size, image_size)
    assert expected.abs().lt(0.9).float().mean() > 0.5  # mostly unsaturated: tanh hides no error
    assert (actual - expected).abs().max() < 1e-5


def test_folded_form_changes_when_any_weight_changes():
    generator = _random_conv_generator(28)
    noise, labels = torch.randn(16, 100), torch.arange(16) % 10
    with torch.no_grad():
        before = inference_form(generator)(noise, labels)
        for name, parameter in generator.named_parameters():
            parameter.add_(0.05)
            after = inference_form(generator)(noise, labels)
            assert (after - before).abs().max() > 1e-3, f"{name} does not reach the folded form"
            parameter.sub_(0.05)


def test_the_mlp_design_is_traced_as_it_is():
    generator = build_generator(TrainConfig(design="mlp"))
    assert inference_form(generator) is generator


def test_other_upsampling_layers_are_refused():
    generator = _random_conv_generator(28)
    generator.up_half.padding = (0, 0)
    with pytest.raises(ValueError, match="needs 4x4 stride-2 padding-1 upsampling"):
        inference_form(generator)


def test_onnxruntime_runs_the_int8_model_without_layout_transposes(tmp_path):
    """Channels-last around the convolutions is there so that the transposes onnxruntime inserts
    for its int8 convolutions cancel: after its optimisations the only Transpose left interleaves
    the blocks into the image, nothing is cropped, and each ReLU is folded into a quantize step."""
    export_untrained(TrainConfig(design="conv"), tmp_path / "fp32.onnx")
    model = quantize_int8(onnx.load(tmp_path / "fp32.onnx"))
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    nodes = onnx.load(tmp_path / "optimized.onnx").graph.node
    operators = Counter(node.op_type for node in nodes)
    found = f"onnxruntime {onnxruntime.__version__} left {dict(operators)}"
    assert operators["QLinearConv"] == 2 and operators["QLinearMatMul"] == 1, found
    assert operators["Slice"] == operators["Relu"] == operators["DepthToSpace"] == 0, found
    [transpose] = [node for node in nodes if node.op_type == "Transpose"]
    [reshape] = [node for node in nodes if transpose.output[0] in node.input]
    assert reshape.op_type == "Reshape" and reshape.output[0] == "images", found  # the interleaving
