"""benchmarks/int8_error.py: the export check's int8 error, as exported and with one quantization
choice changed at a time, and the variants' files for evaluation."""

import re
import subprocess
import sys

import numpy as np
import onnx

from benchmarks.int8_error import TANH_INPUT_BOUND, narrowed, tanh_inputs, variants
from cgan_export.quantize import activation_ranges, calibration_inputs, quantize_int8
from cgan_export.verify import check_int8_agreement
from cgan_runtime.generator import DigitGenerator
from tests.conftest import REPO_ROOT

FP32 = REPO_ROOT / "models" / "cgan_generator.onnx"
INT8 = REPO_ROOT / "models" / "cgan_generator_int8.onnx"


def int8_error(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.int8_error", *args]
    return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_the_tanh_input_is_found_through_the_transpose_and_only_its_range_is_narrowed():
    model = onnx.load(FP32)
    assert tanh_inputs(model) == ["conv2d_1"]  # Conv -> Transpose -> Tanh
    ranges = activation_ranges(model, calibration_inputs(100, 10)[:2])
    narrow = narrowed(ranges, ["conv2d_1"], TANH_INPUT_BOUND)
    low, high = narrow["conv2d_1"]
    assert ranges["conv2d_1"][0] < -TANH_INPUT_BOUND  # the shipped model's logits reach far below
    assert np.isclose(low, -TANH_INPUT_BOUND) and 0 < high <= TANH_INPUT_BOUND
    assert all(narrow[name] == ranges[name] for name in ranges if name != "conv2d_1")
    # beyond the bound, the Tanh is within a tenth of a grey level (2 / 255 in [-1, 1]) of +-1
    assert 1 - np.tanh(TANH_INPUT_BOUND) <= 2 / 255 / 10 + 1e-12


def test_as_exported_is_the_export_s_own_int8_model_and_narrowing_lowers_the_error():
    model = onnx.load(FP32)
    found = variants(model)
    assert found["as exported"].graph == quantize_int8(model).graph
    errors = {name: check_int8_agreement(model, variant, 100, 10)["mean"] for name, variant in found.items()}
    assert errors["Tanh input narrowed"] < errors["as exported"]
    assert all(0 < error < 0.02 for error in errors.values()), errors


def test_the_command_prints_every_variant_and_writes_files_the_runtime_loads(tmp_path):
    result = int8_error(str(FP32), "--write-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^(.+?)\s+([0-9.]+)\s+([0-9.]+) \((\d)\)$", result.stdout, re.MULTILINE)
    assert [row[0] for row in rows][:3] == ["as exported", "8-bit weights", "Tanh input narrowed"]
    assert len(rows) == 6 and all(float(mean) <= float(worst) for _, mean, worst, _ in rows)
    written = sorted(tmp_path.iterdir())
    assert len(written) == 6
    fp32_version = DigitGenerator(FP32).info.model_version
    for path in written:
        runtime = DigitGenerator(path)
        assert runtime.sample(digit=3, count=2).shape == (2, 28, 28)
        assert runtime.info.model_version.startswith(fp32_version + "-int8-")  # --baseline takes it


def test_an_int8_model_or_a_crafted_file_is_refused_in_one_line(tmp_path):
    crafted = tmp_path / "crafted.onnx"
    crafted.write_bytes(b"not a model")
    for path, message in ((INT8, "is not an fp32 export"), (crafted, "not a loadable ONNX model")):
        result = int8_error(str(path))
        assert result.returncode == 1 and message in result.stderr
        assert result.stderr.strip().count("\n") == 0
