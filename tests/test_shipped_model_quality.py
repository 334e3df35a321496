"""The guard: a shipped model that draws the wrong digits can never land silently, and the int8
model the runtime bundles stays within the bar of its exact fp32 form."""

import json

import numpy as np

from cgan_runtime.generator import DigitGenerator
from cgan_train.evaluate import MAX_ACCURACY_DROP, compare_to_exact, judge_set, sample_digits
from cgan_train.judge import load_judge
from tests.conftest import EXACT_MODEL, REPO_ROOT, SHIPPED_MODEL
from tests.test_judge import COMMITTED_JUDGE


def _judged(model):
    judge, _ = load_judge(COMMITTED_JUDGE)
    generator = DigitGenerator(model, device="cpu")
    return judge_set(judge, *sample_digits(generator, per_digit=1000))


def test_the_shipped_model_draws_the_asked_digit_at_least_99_percent_of_the_time_for_every_digit():
    judged = _judged(SHIPPED_MODEL)
    for digit in range(10):
        accuracy = (judged.of_digit(digit).predictions == digit).mean()
        assert accuracy >= 0.99, f"digit {digit}: only {accuracy:.1%} judged as {digit}"


def test_the_bundled_int8_model_is_as_accurate_as_its_fp32_form_on_the_same_samples():
    int8, exact = (_judged(model) for model in (SHIPPED_MODEL, EXACT_MODEL))
    drop = np.mean(exact.predictions == exact.labels) - np.mean(int8.predictions == int8.labels)
    assert drop <= MAX_ACCURACY_DROP, f"int8 is {100 * drop:.2f} points less accurate than fp32"


def test_the_committed_evaluations_are_of_the_shipped_files_and_int8_clears_the_bar():
    reports = {name: json.loads((REPO_ROOT / "models" / name).read_text())
               for name in ("evaluation.json", "evaluation_int8.json")}
    models = {"evaluation.json": EXACT_MODEL, "evaluation_int8.json": SHIPPED_MODEL}
    versions = {name: DigitGenerator(model, device="cpu").info.model_version
                for name, model in models.items()}
    for name, report in reports.items():
        assert report["model_version"] == versions[name], f"models/{name} is stale: run make evaluate"
    line, clears = compare_to_exact(reports["evaluation_int8.json"], reports["evaluation.json"])
    assert clears, line
