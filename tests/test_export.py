"""The export chain: ONNX interface and metadata, parity with torch, nothing written on failure."""

import json
import re

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper

from cgan_export.float64_reference import Float64Reference
from cgan_export.inference_form import inference_form
from cgan_export.onnx_export import export_generator, onnx_version
from cgan_export.quantize import (
    QUANTISED_OPERATORS,
    TANH_INPUT_BOUND,
    activation_ranges,
    calibration_inputs,
    int8_version_of,
    quantize_int8,
    tanh_inputs,
)
from cgan_export.ship import ship
from cgan_export.verify import PARITY_BATCH_SIZES, ExportVerificationError, check_int8_agreement, check_parity
from cgan_export.weight_rounding import rounded_conv_weights
from cgan_runtime.generator import LABELS_INPUT
from cgan_train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, shipped_generator
from cgan_train.config import TrainConfig
from cgan_train.models import build_generator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples

SHIPPED_FILES = {
    "cgan_generator.onnx",
    "cgan_generator_int8.onnx",
    "cgan_generator.pt",
    "MODEL_CARD.md",
    "sample_grid.png",
}
PROVENANCE = {"git_commit": "test", "data_sha256": "test", "torch_version": "test", "epochs_done": 0}


def test_export_writes_the_model_its_torch_twin_card_and_grid_and_nothing_else(exported_dir):
    assert {path.name for path in exported_dir.iterdir()} == SHIPPED_FILES


def test_parity_with_torch_within_1e_5_at_every_batch_size(trained_run):
    state = load_checkpoint(trained_run / "checkpoint.pt")
    generator = shipped_generator(state)
    provenance = {**state["provenance"], "epochs_done": 2}
    model = export_generator(generator, state["config"], provenance)
    differences = check_parity(generator, model, latent_dim=100, num_classes=10)
    assert list(differences) == list(PARITY_BATCH_SIZES) == [1, 2, 7, 64, 1000]
    assert all(0 <= difference <= 1e-5 for difference in differences.values())


@pytest.mark.parametrize("name", ["cgan_generator.onnx", "cgan_generator_int8.onnx"])
def test_onnx_interface_has_a_dynamic_batch(exported_dir, name):
    session = onnxruntime.InferenceSession(str(exported_dir / name))
    z, labels = session.get_inputs()
    (images,) = session.get_outputs()
    assert (z.name, z.type, z.shape[1]) == ("z", "tensor(float)", 100)
    assert (labels.name, labels.type, len(labels.shape)) == ("labels", "tensor(int64)", 1)
    assert (images.name, images.type, images.shape[1:]) == ("images", "tensor(float)", [1, 28, 28])
    for batch_size in (1, 1000):
        feeds = {"z": np.zeros((batch_size, 100), np.float32), "labels": np.arange(batch_size) % 10}
        (output,) = session.run(None, feeds)
        assert output.shape == (batch_size, 1, 28, 28)
        assert output.min() >= -1 and output.max() <= 1


def test_metadata_describes_interface_training_and_data(exported_dir, trained_run):
    model = onnx.load(str(exported_dir / "cgan_generator.onnx"))
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    state = load_checkpoint(trained_run / "checkpoint.pt")
    assert metadata["latent_dim"] == "100"
    assert metadata["num_classes"] == "10"
    assert metadata["image_size"] == "28"
    assert json.loads(metadata["output_range"]) == [-1.0, 1.0]
    assert metadata["model_version"].startswith("mlp-e2-")
    assert json.loads(metadata["training_config"]) == state["config"].to_dict()
    assert metadata["git_commit"] == state["provenance"]["git_commit"]
    assert metadata["training_data_sha256"] == state["provenance"]["data_sha256"]


def test_int8_form_says_what_it_is_and_otherwise_keeps_the_metadata(exported_dir):
    exact, int8 = (
        {prop.key: prop.value for prop in onnx.load(str(exported_dir / name)).metadata_props}
        for name in ("cgan_generator.onnx", "cgan_generator_int8.onnx")
    )
    assert (exact["precision"], int8["precision"]) == ("fp32", "int8")
    prefix = re.escape(int8_version_of(exact["model_version"]))
    assert re.fullmatch(prefix + "[0-9a-f]{8}", int8["model_version"])
    unchanged = set(exact) - {"precision", "model_version"}
    assert {key: int8[key] for key in unchanged} == {key: exact[key] for key in unchanged}


def _conv_export(seed: int = 0) -> tuple[onnx.ModelProto, torch.nn.Module]:
    """An untrained conv generator (random weights) exported: the design the runtime ships."""
    torch.manual_seed(seed)
    generator = build_generator(TrainConfig(design="conv")).eval()
    return export_generator(generator, TrainConfig(design="conv"), PROVENANCE), generator


def test_conv_export_matches_torch_and_its_int8_form_quantizes_every_convolution_and_product():
    model, generator = _conv_export()
    assert max(check_parity(generator, model, latent_dim=100, num_classes=10).values()) <= 1e-5
    int8 = quantize_int8(model)
    producers = {output: node for node in int8.graph.node for output in node.output}
    integer_weights = {
        tensor.name for tensor in int8.graph.initializer if tensor.data_type == onnx.TensorProto.INT8
    }
    heavy = [node for node in int8.graph.node if node.op_type in QUANTISED_OPERATORS]
    assert sorted(node.op_type for node in heavy) == ["Conv", "Conv", "MatMul"]
    for node in heavy:
        weight = producers[node.input[1]]
        assert weight.op_type == "DequantizeLinear" and weight.input[0] in integer_weights
        assert producers[node.input[0]].op_type == "DequantizeLinear"  # uint8 activations
    agreement = check_int8_agreement(model, int8, latent_dim=100, num_classes=10)
    assert 0 < agreement["mean"] <= agreement["worst_digit_mean"] <= 0.02


def _broken(int8: onnx.ModelProto, factor: float = 5.0) -> onnx.ModelProto:
    """int8 with every weight's quantization scale multiplied by factor: a broken quantization."""
    names = {tensor.name for tensor in int8.graph.initializer}
    for tensor in int8.graph.initializer:
        if tensor.name.endswith("_scale") and tensor.name.removesuffix("_scale") + "_quantized" in names:
            tensor.CopyFrom(
                onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(tensor) * factor, tensor.name)
            )
    return int8


def test_a_broken_quantization_fails_the_int8_check():
    model, _ = _conv_export()
    with pytest.raises(ExportVerificationError, match="its quantization is broken"):
        check_int8_agreement(model, _broken(quantize_int8(model)), latent_dim=100, num_classes=10)


def test_an_int8_model_that_draws_nan_for_one_digit_fails_the_int8_check(monkeypatch):
    import cgan_export.verify

    class Session:  # draws zeros, or NaN for digit 7 when it stands for the int8 model
        def __init__(self, model):
            self.broken = model == "int8"

        def run(self, outputs, feeds):
            images = np.zeros((len(feeds[LABELS_INPUT]), 1, 28, 28), np.float32)
            if self.broken:
                images[feeds[LABELS_INPUT] == 7] = np.nan
            return [images]

    monkeypatch.setattr(cgan_export.verify, "_session", Session)
    # NaN compares false with every number: it must still be the worst digit, not be passed over
    with pytest.raises(ExportVerificationError, match="for digit 7"):
        check_int8_agreement("fp32", "int8", latent_dim=100, num_classes=10)


@pytest.mark.faults
def test_a_broken_quantization_is_refused_and_nothing_is_written(trained_run, tmp_path, monkeypatch):
    import cgan_export.ship

    monkeypatch.setattr(cgan_export.ship, "quantize_int8", lambda model: _broken(quantize_int8(model)))
    with pytest.raises(ExportVerificationError, match="its quantization is broken"):
        ship(trained_run / "checkpoint.pt", tmp_path / "models")
    assert not (tmp_path / "models").exists()


def test_quantizing_twice_gives_the_same_bytes():
    model, _ = _conv_export()
    assert quantize_int8(model).SerializeToString() == quantize_int8(model).SerializeToString()


def test_model_is_one_self_contained_file(exported_dir):
    model = onnx.load(str(exported_dir / "cgan_generator.onnx"), load_external_data=False)
    assert not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


@pytest.mark.parametrize("name", ["cgan_generator.onnx", "cgan_generator_int8.onnx"])
def test_model_holds_no_paths_of_the_exporting_machine(exported_dir, name):
    assert str(REPO_ROOT).encode() not in (exported_dir / name).read_bytes()


def test_model_card_names_the_checks_and_no_figure_of_the_exporting_machine(exported_dir):
    card = (exported_dir / "MODEL_CARD.md").read_text()
    assert "within 1e-05 at\n  N = 1, 2, 7, 64, 1000" in card
    assert "2 epochs" in card
    assert not re.search(r"\de-0\d", card.replace("1e-05", ""))  # no measured parity figure


def test_exporting_the_same_weights_again_changes_no_file(exported_dir, tmp_path):
    copy = tmp_path / "models"
    copy.mkdir()
    for path in exported_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    before = {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in copy.iterdir()}
    again = ship(copy / "cgan_generator.pt", copy)
    assert again.changed == []
    assert {path.name: (path.stat().st_mtime_ns, path.read_bytes()) for path in copy.iterdir()} == before


def test_the_inference_form_is_folded_without_a_matrix_product():
    """A matrix product's rounding is the BLAS library's and the CPU's: the folded tables must not
    depend on one, so that every machine exports the same bytes."""
    _, generator = _conv_export()
    expected = inference_form(generator).state_dict()

    def refuse(*args, **kwargs):
        raise AssertionError("a matrix product in the fold")

    with pytest.MonkeyPatch.context() as patch:
        for name in (
            "__matmul__",
            "matmul",
            "mm",
            "addmm",
            "bmm",
            "einsum",
            "tensordot",
            "inner",
            "dot",
            "mv",
            "linear",
        ):
            patch.setattr(torch.Tensor, name, refuse, raising=False)
            patch.setattr(torch, name, refuse, raising=False)
        patch.setattr(torch.nn.functional, "linear", refuse)
        folded = inference_form(generator).state_dict()
    assert all(torch.equal(folded[name], tensor) for name, tensor in expected.items())


def test_quantizing_runs_no_onnxruntime_session(monkeypatch):
    """onnxruntime's float32 kernels differ from CPU to CPU: calibration ranges come from float64."""
    model, _ = _conv_export()
    expected = quantize_int8(model).SerializeToString()

    def refuse(*args, **kwargs):
        raise AssertionError("an onnxruntime session while quantizing")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    assert quantize_int8(model).SerializeToString() == expected


def test_calibration_ranges_with_no_tail_are_the_float64_extremes_of_each_quantized_activation():
    model, generator = _conv_export()
    batches = calibration_inputs(latent_dim=100, num_classes=10)[:2]
    ranges = activation_ranges(model, batches, tail=0)
    assert set(ranges) == {"z", "matmul", "permute", "conv2d", "permute_2", "conv2d_1"}
    noise = np.concatenate([batch["z"] for batch in batches])
    low, high = ranges["z"]
    assert (low.dtype, low.shape) == (np.float32, (1,))
    assert (low[0], high[0]) == (noise.min(), noise.max())
    with torch.no_grad():  # the last convolution's output is the image before tanh
        images = np.concatenate(
            [generator(torch.from_numpy(batch["z"]), torch.from_numpy(batch["labels"])) for batch in batches]
        )
    low, high = ranges["conv2d_1"]
    assert np.tanh(low[0]) == pytest.approx(images.min(), abs=1e-5)
    assert np.tanh(high[0]) == pytest.approx(images.max(), abs=1e-5)


def test_a_computed_tensor_s_range_leaves_out_its_rarest_values_over_batches_of_any_size():
    model, _ = _conv_export()
    first, second = calibration_inputs(latent_dim=100, num_classes=10)[:2]
    batches = [first, {name: values[:13] for name, values in second.items()}]  # 50 and 13 rows
    tail = 1e-3
    ranges = activation_ranges(model, batches, tail=tail)
    extremes = activation_ranges(model, batches, tail=0)
    assert ranges["z"] == extremes["z"]  # the caller's input keeps its full range
    reference = Float64Reference(model)
    for name in ("matmul", "conv2d", "conv2d_1"):
        values = np.concatenate([reference.run(batch, [name])[name].ravel() for batch in batches])
        ordered = np.sort(values)
        rare = int(tail * len(values))  # at most this many values beyond each end
        assert ranges[name] == (np.float32([ordered[rare]]), np.float32([ordered[-1 - rare]]))
        assert extremes[name][0][0] < ranges[name][0][0] < ranges[name][1][0] < extremes[name][1][0]


def test_the_int8_model_quantizes_the_tanh_input_in_the_narrowed_range_only():
    model = onnx.load(REPO_ROOT / "models" / "cgan_generator.onnx")  # trained: its logits reach far below
    int8 = quantize_int8(model)
    scales = {
        node.input[0]: float(numpy_helper.to_array(_initializer(int8, node.input[1])))
        for node in int8.graph.node
        if node.op_type == "QuantizeLinear"
    }
    assert tanh_inputs(model) == ["conv2d_1"]  # Conv -> Transpose -> Tanh
    assert scales["conv2d_1"] == pytest.approx(2 * TANH_INPUT_BOUND / 255, rel=1e-3)
    # beyond the bound, the Tanh is within a tenth of a grey level (2 / 255 in [-1, 1]) of +-1
    assert 1 - np.tanh(TANH_INPUT_BOUND) <= 2 / 255 / 10 + 1e-12
    ranges = activation_ranges(model, calibration_inputs(latent_dim=100, num_classes=10))
    low, high = ranges["conv2d"]  # a tensor the Tanh does not read: its range as calibrated
    assert scales["conv2d"] == pytest.approx(float(high[0] - low[0]) / 255, rel=1e-3)


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(tensor for tensor in model.graph.initializer if tensor.name == name)


def test_torch_twin_reexports_to_the_same_weights(exported_dir, tmp_path):
    again = ship(exported_dir / "cgan_generator.pt", tmp_path)
    assert again.model_version == onnx_version(onnx.load(str(exported_dir / "cgan_generator.onnx")))


def test_a_torch_model_that_differs_from_the_file_fails_parity(trained_run):
    state = load_checkpoint(trained_run / "checkpoint.pt")
    generator = shipped_generator(state)
    model = export_generator(generator, state["config"], {**state["provenance"], "epochs_done": 2})
    with torch.no_grad():
        generator.net[0].bias.add_(1e-3)
    with pytest.raises(ExportVerificationError, match="differs from torch by more than 1e-05"):
        check_parity(generator, model, latent_dim=100, num_classes=10)


def _altered_checkpoint(trained_run, **config_changes) -> dict:
    """The fixture run's checkpoint state, its config changed; save it with _assert_not_shipped."""
    state = load_checkpoint(trained_run / "checkpoint.pt")
    state["config"] = state["config"].to_dict() | config_changes
    return state


def _assert_not_shipped(state: dict, tmp_path, error: type[Exception], match: str) -> None:
    save_checkpoint(tmp_path / "altered.pt", state)
    with pytest.raises(error, match=match):
        ship(tmp_path / "altered.pt", tmp_path / "models")
    assert not (tmp_path / "models").exists()  # nothing written


@pytest.mark.faults
def test_unfinished_training_is_refused_and_nothing_is_written(trained_run, tmp_path):
    state = _altered_checkpoint(trained_run, epochs=5)
    _assert_not_shipped(state, tmp_path, CheckpointError, "stopped at epoch 2 of 5")


@pytest.mark.faults
def test_non_finite_weights_are_refused_and_nothing_is_written(trained_run, tmp_path):
    state = _altered_checkpoint(trained_run)
    state["generator"]["net.0.weight"][0, 0] = float("nan")
    _assert_not_shipped(state, tmp_path, CheckpointError, "generator weight net.0.weight holds NaN or Inf")


@pytest.mark.faults
def test_a_config_that_does_not_fit_the_weights_is_refused(trained_run, tmp_path):
    state = _altered_checkpoint(trained_run, latent_dim=64)
    _assert_not_shipped(state, tmp_path, CheckpointError, "weights do not fit the mlp design of its config")


def test_the_int8_model_holds_the_rounded_convolution_weights_on_the_grid_of_the_weights_as_trained():
    model, _ = _conv_export()
    int8 = quantize_int8(model)
    rounded = rounded_conv_weights(model, calibration_inputs(latent_dim=100, num_classes=10))
    for name, values in rounded.items():
        trained = numpy_helper.to_array(_initializer(model, name))
        levels = numpy_helper.to_array(_initializer(int8, f"{name}_quantized"))
        scale = numpy_helper.to_array(_initializer(int8, f"{name}_scale"))
        assert np.array_equal(scale, np.abs(trained.reshape(len(trained), -1)).max(axis=1) / 64)
        assert np.allclose(levels * scale[:, None, None, None], values, rtol=0, atol=1e-6)
        assert np.abs(levels).max() <= 64  # 7 bits: no pair of products overflows int16 (quantize.py)
