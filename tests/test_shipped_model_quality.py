"""The guard: a shipped model that draws the wrong digits can never land silently, and a bundled
int8 model stays within the bar of the fp32 export."""

import functools
import hashlib
import json
import subprocess

import numpy as np
import pytest

from cgan_export.bundle import bundle_choice
from cgan_export.onnx_export import PRECISION_KEY
from cgan_runtime.generator import DigitGenerator
from cgan_train.evaluate import MAX_ACCURACY_DROP, compare_to_fp32, judge_set, sample_digits
from cgan_train.judge import load_judge
from tests.conftest import BUNDLED_MODEL, COMMITTED_JUDGE, FP32_MODEL, INT8_MODEL, REPO_ROOT

# slow: 10,000 samples a model. One worker runs the module (make test's --dist loadgroup), so that
# the bundled file and the int8 model, the same bytes, are sampled once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("shipped_model_samples")]

REPORTS = {FP32_MODEL: "evaluation.json", INT8_MODEL: "evaluation_int8.json"}
# The one decision, as the bundled file itself records it.
BUNDLES_INT8 = DigitGenerator(BUNDLED_MODEL, device="cpu").info.metadata.get(PRECISION_KEY) == "int8"


def _judged(model):
    return _judged_file(hashlib.sha256(model.read_bytes()).hexdigest(), model)


@functools.cache
def _judged_file(digest: str, model):
    """1,000 samples of every digit, judged; once per file content (the bundled file is the int8
    model's copy)."""
    judge, _ = load_judge(COMMITTED_JUDGE)
    generator = DigitGenerator(model, device="cpu")
    return judge_set(judge, *sample_digits(generator, per_digit=1000))


def _report(model) -> dict:
    return json.loads((REPO_ROOT / "models" / REPORTS[model]).read_text())


def test_the_shipped_model_draws_the_asked_digit_at_least_99_percent_of_the_time_for_every_digit():
    judged = _judged(BUNDLED_MODEL)
    for digit in range(10):
        accuracy = (judged.of_digit(digit).predictions == digit).mean()
        assert accuracy >= 0.99, f"digit {digit}: only {accuracy:.1%} judged as {digit}"


@pytest.mark.skipif(not BUNDLES_INT8, reason="the runtime bundles the fp32 export itself")
def test_the_bundled_int8_model_is_as_accurate_as_the_fp32_export_on_the_same_samples():
    int8, fp32 = (_judged(model) for model in (INT8_MODEL, FP32_MODEL))
    drop = np.mean(fp32.predictions == fp32.labels) - np.mean(int8.predictions == int8.labels)
    assert drop <= MAX_ACCURACY_DROP, f"int8 is {100 * drop:.2f} points less accurate than fp32"


def test_the_committed_evaluations_are_of_the_shipped_files():
    for model in (FP32_MODEL, INT8_MODEL):
        version = DigitGenerator(model, device="cpu").info.model_version
        assert _report(model)["model_version"] == version, f"{model.name}'s report is stale: make evaluate"


@pytest.mark.skipif(not BUNDLES_INT8, reason="the runtime bundles the fp32 export itself")
def test_the_bundled_int8_model_clears_the_bar_of_the_fp32_export():
    line, clears = compare_to_fp32(_report(INT8_MODEL), _report(FP32_MODEL))
    assert clears, line


def test_the_bundled_file_is_the_one_the_evaluations_decide_a_real_file_in_git():
    source, reason = bundle_choice(REPO_ROOT / "models")
    assert BUNDLED_MODEL.read_bytes() == source.read_bytes(), f"the bundle is stale ({reason}): make bundle"
    listing = subprocess.run(
        ["git", "ls-files", "-s"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert not [line for line in listing.splitlines() if line.startswith("120000")]  # no symlink
