"""benchmarks/noise_scale.py: the fp32 export sampled at another temperature, its noise scaled
inside the file."""

import subprocess

import numpy as np
import onnx
import onnxruntime
import pytest

from benchmarks.noise_scale import with_noise_scale
from tests.conftest import REPO_ROOT
from tests.helpers import run_module

FP32 = REPO_ROOT / "models" / "cgan_generator.onnx"


def _draw(model: onnx.ModelProto, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"z": noise, "labels": labels})[0]


def noise_scale(*args: str) -> subprocess.CompletedProcess:
    return run_module("benchmarks.noise_scale", *args, timeout=60)


@pytest.mark.parametrize("scale", [0.5, 1.2])
def test_the_scaled_model_draws_what_the_model_draws_from_the_scaled_noise(scale):
    model = onnx.load(FP32)
    noise = np.random.default_rng(0).standard_normal((20, 100), dtype=np.float32)
    labels = np.arange(20, dtype=np.int64) % 10
    scaled = with_noise_scale(model, scale)
    expected = _draw(model, (noise * scale).astype(np.float32), labels)
    assert np.abs(_draw(scaled, noise, labels) - expected).max() < 1e-5
    assert np.abs(_draw(scaled, noise, labels) - _draw(model, noise, labels)).max() > 0.1
    version = next(prop.value for prop in scaled.metadata_props if prop.key == "model_version")
    assert version.endswith(f"-noise{scale:g}")


def test_a_model_whose_noise_does_not_enter_a_weighted_product_first_is_refused():
    model = onnx.load(FP32)
    product = next(node for node in model.graph.node if "z" in node.input)
    product.op_type = "Add"
    with pytest.raises(ValueError, match="does not enter one MatMul"):
        with_noise_scale(model, 1.1)


@pytest.mark.parametrize("scale", [1e-300, 1e39])
def test_a_scale_that_takes_the_weights_out_of_float32_is_refused(scale):
    with pytest.raises(ValueError, match="out of float32's range"):
        with_noise_scale(onnx.load(FP32), scale)


def test_the_command_writes_the_model_and_refuses_bad_input_in_one_line(tmp_path):
    out = tmp_path / "scaled.onnx"
    assert noise_scale(str(FP32), "1.1", str(out)).returncode == 0
    assert out.exists() and list(tmp_path.iterdir()) == [out]
    for args, message in (
        ((str(FP32), "0", str(tmp_path / "a.onnx")), "the scale must be a positive number, not 0"),
        ((str(FP32), "nan", str(tmp_path / "a.onnx")), "the scale must be a positive number, not nan"),
        (
            (str(REPO_ROOT / "models" / "cgan_generator_int8.onnx"), "1.1", str(tmp_path / "a.onnx")),
            "not an fp32",
        ),
        ((str(FP32), "1.1", str(tmp_path / "missing" / "a.onnx")), "cannot write"),
    ):
        result = noise_scale(*args)
        assert result.returncode == 1, args
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert list(tmp_path.iterdir()) == [out]
