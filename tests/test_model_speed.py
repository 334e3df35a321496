"""benchmarks/model_speed.py, the speed bar for a wider generator: it times two models through the
runtime in one run and says how many times the candidate's time per image is."""

import re
import subprocess

from tests.conftest import REPO_ROOT
from tests.helpers import run_module

INT8 = REPO_ROOT / "models" / "cgan_generator_int8.onnx"
FP32 = REPO_ROOT / "models" / "cgan_generator.onnx"


def model_speed(*args: str) -> subprocess.CompletedProcess:
    return run_module("benchmarks.model_speed", *args)


def test_a_model_against_itself_takes_about_the_same_time_and_fp32_takes_longer_than_int8():
    same = model_speed(str(INT8), "--seconds", "1")
    assert same.returncode == 0, same.stderr
    ratios = [float(ratio) for ratio in re.findall(r"takes ([0-9.]+)x the time", same.stdout)]
    assert len(ratios) == 2 and all(0.5 < ratio < 2 for ratio in ratios), same.stdout
    # The bundled int8 model is the faster form (docs/benchmarks.md): fp32 must come out slower.
    slower = model_speed(str(FP32), "--seconds", "2")
    ratios = [float(ratio) for ratio in re.findall(r"takes ([0-9.]+)x the time", slower.stdout)]
    assert len(ratios) == 2 and all(ratio > 1 for ratio in ratios), slower.stdout


def test_a_file_that_is_no_model_is_one_line(tmp_path):
    crafted = tmp_path / "crafted.onnx"
    crafted.write_bytes(b"not a model")
    result = model_speed(str(crafted))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0 and "not a loadable ONNX model" in result.stderr


def test_a_measuring_time_that_is_not_positive_is_refused_by_the_parser():
    for seconds in ("0", "-1", "nan"):
        result = model_speed(str(INT8), "--seconds", seconds)
        assert result.returncode == 2 and "positive number of seconds" in result.stderr
        assert "Traceback" not in result.stderr


def test_a_table_into_a_full_stdout_is_one_line_before_anything_is_timed():
    with open("/dev/full", "w") as full:  # every write fails, as on a full disk
        result = run_module("benchmarks.model_speed", str(INT8), "--seconds", "60", stdout=full)
    assert result.returncode == 1  # at once: a minute of timing would pass the test's own timeout
    assert result.stderr == "Error: nothing timed yet, but cannot print the table: No space left on device\n"
