"""export/weight_rounding.py: GPTQ puts every weight on its channel's grid and leaves a smaller
output error than rounding each weight to its nearest level."""

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from cgan_export.quantize import calibration_inputs
from cgan_export.weight_rounding import WEIGHT_LEVELS, _patches, gptq, rounded_conv_weights
from tests.conftest import REPO_ROOT

LEVELS = WEIGHT_LEVELS[7]


def _nearest(weight: np.ndarray, levels: int) -> np.ndarray:
    scale = np.abs(weight).max(axis=1, keepdims=True) / levels
    return np.round(weight / scale) * scale


def _correlated_inputs(rng: np.random.Generator, features: int, count: int) -> np.ndarray:
    """Inputs [features, count] that vary together, as a layer's inputs do."""
    mixing = rng.standard_normal((features, features // 4))
    return np.maximum(mixing @ rng.standard_normal((features // 4, count)), 0)  # ReLU outputs, like ours


def test_every_weight_is_on_its_channel_s_grid_and_the_output_error_is_smaller_than_nearest_rounding():
    rng = np.random.default_rng(0)
    weight = rng.standard_t(3, (16, 256)).astype(np.float32)  # long tails, like a long-trained layer's
    inputs = _correlated_inputs(rng, 256, 4000)
    rounded = gptq(weight, inputs @ inputs.T / inputs.shape[1], LEVELS)
    scale = np.abs(weight.astype(np.float64)).max(axis=1, keepdims=True) / LEVELS
    levels = rounded / scale
    assert np.allclose(levels, np.round(levels), atol=1e-4) and np.abs(levels).max() <= LEVELS
    assert not np.allclose(rounded, _nearest(weight, LEVELS))  # it does choose otherwise
    fresh = _correlated_inputs(np.random.default_rng(1), 256, 4000)  # inputs it was not fitted on
    ours = np.mean(((rounded - weight) @ fresh) ** 2)
    nearest = np.mean(((_nearest(weight, LEVELS) - weight) @ fresh) ** 2)
    assert ours < 0.9 * nearest, (ours, nearest)


def test_with_inputs_that_never_vary_together_or_are_always_zero_it_is_nearest_rounding():
    """Nothing to move an error onto: a diagonal E[x x^T] leaves each weight at its nearest level,
    and so does a layer whose inputs were 0 on every calibration input (a dead layer)."""
    weight = np.random.default_rng(2).standard_normal((8, 32)).astype(np.float32)
    for covariance in (np.diag(np.linspace(0.5, 2.0, 32)), np.zeros((32, 32))):
        assert np.allclose(gptq(weight, covariance, LEVELS), _nearest(weight, LEVELS), atol=1e-6)


def test_the_patches_are_what_the_convolution_multiplies_by_its_weights():
    rng = np.random.default_rng(3)
    images = rng.standard_normal((2, 5, 7, 7))
    weight = rng.standard_normal((4, 5, 2, 2))
    for pads in ([0, 0, 0, 0], [1, 1, 1, 1]):
        expected = torch.nn.functional.conv2d(
            torch.from_numpy(images), torch.from_numpy(weight), padding=pads[0]
        )
        columns = _patches(images, (2, 2), pads)
        outputs = weight.reshape(4, -1) @ columns  # [out, batch x positions]
        got = outputs.reshape(4, 2, *expected.shape[2:]).transpose(1, 0, 2, 3)
        assert np.allclose(got, expected.numpy())


def test_the_shipped_export_s_convolution_weights_are_rounded_and_its_product_is_left_alone():
    model = onnx.load(REPO_ROOT / "models" / "cgan_generator.onnx")
    rounded = rounded_conv_weights(model, calibration_inputs(100, 10)[:4])
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    assert set(rounded) == {
        "phases_weight",
        "blocks_weight",
    }  # the MatMul reads z, whose inputs never vary together
    for name, values in rounded.items():
        assert values.shape == weights[name].shape and values.dtype == np.float32
        scale = np.abs(weights[name].reshape(len(values), -1)).max(axis=1) / LEVELS
        steps = np.abs(values - weights[name]).reshape(len(values), -1) / scale[:, None]
        assert 0.5 < steps.max() <= 3  # some leave their nearest level, none goes far: not a refit
        assert np.all(values[weights[name] == 0] == 0)  # the inference form's zeros are its structure


def test_only_plain_convolutions_are_rounded_the_others_are_left_to_onnxruntime():
    rng = np.random.default_rng(4)
    weights = {
        "plain_w": rng.standard_normal((4, 4, 2, 2)).astype(np.float32),
        "grouped_w": rng.standard_normal((4, 2, 2, 2)).astype(np.float32),
        "strided_w": rng.standard_normal((4, 4, 2, 2)).astype(np.float32),
    }
    nodes = [
        onnx.helper.make_node("Conv", ["x", "plain_w"], ["a"], name="plain", pads=[1, 1, 1, 1]),
        onnx.helper.make_node("Conv", ["a", "grouped_w"], ["b"], name="grouped", group=2),
        onnx.helper.make_node("Conv", ["b", "strided_w"], ["y"], name="strided", strides=[2, 2]),
    ]
    graph = onnx.helper.make_graph(
        nodes,
        "convs",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [None, 4, 6, 6])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in weights.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    batches = [{"x": rng.standard_normal((3, 4, 6, 6)).astype(np.float32)} for _ in range(2)]
    rounded = rounded_conv_weights(model, batches)
    assert set(rounded) == {"plain_w"}
    scale = np.abs(weights["plain_w"].reshape(4, -1)).max(axis=1) / LEVELS
    levels = rounded["plain_w"].reshape(4, -1) / scale[:, None]
    assert np.allclose(levels, np.round(levels), atol=1e-4)
