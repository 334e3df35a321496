"""benchmarks/int8_error.py: the export check's int8 error, as exported and with one quantization
choice changed at a time, and the variants' files for evaluation."""

import re
import subprocess

import onnx

from benchmarks.int8_error import variants
from cgan_export.quantize import quantize_int8
from cgan_export.verify import check_int8_agreement, int8_difference
from cgan_runtime.generator import DigitGenerator
from tests.conftest import REPO_ROOT
from tests.helpers import run_module

FP32 = REPO_ROOT / "models" / "cgan_generator.onnx"
INT8 = REPO_ROOT / "models" / "cgan_generator_int8.onnx"


def int8_error(*args: str) -> subprocess.CompletedProcess:
    return run_module("benchmarks.int8_error", *args)


def test_as_exported_is_the_export_s_own_int8_model_and_each_of_its_choices_lowers_the_error():
    model = onnx.load(FP32)
    found = variants(model)
    assert found["as exported"].graph == quantize_int8(model).graph
    errors = {name: int8_difference(model, variant, 100, 10)["mean"] for name, variant in found.items()}
    for without_one in ("weights to nearest level", "Tanh input not narrowed", "ranges to the extremes"):
        assert errors["as exported"] < errors[without_one] < errors["none of these three"], errors
    assert all(error > 0 for error in errors.values()), errors
    check_int8_agreement(model, found["as exported"], 100, 10)  # the export's own check passes


def test_the_command_prints_every_variant_and_writes_files_the_runtime_loads(tmp_path):
    result = int8_error(str(FP32), "--write-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    rows = re.findall(r"^(.+?)\s+([0-9.]+)\s+([0-9.]+) \((\d)\)$", result.stdout, re.MULTILINE)
    assert [row[0] for row in rows] == [
        "as exported",
        "weights to nearest level",
        "Tanh input not narrowed",
        "ranges to the extremes",
        "none of these three",
        "8-bit weights",
        "node_matmul in fp32",
        "node_Conv_48 in fp32",
        "node_conv2d_1 in fp32",
    ]
    assert all(float(mean) <= float(worst) for _, mean, worst, _ in rows)
    written = sorted(tmp_path.iterdir())
    assert len(written) == len(rows)
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


def test_a_table_into_a_full_stdout_is_one_line_before_any_variant_is_measured():
    with open("/dev/full", "w") as full:  # every write fails, as on a full disk
        result = run_module("benchmarks.int8_error", str(FP32), stdout=full)
    assert result.returncode == 1
    assert result.stderr == (
        "Error: nothing measured yet, but cannot print the table: No space left on device\n"
    )
