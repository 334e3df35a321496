"""The classification accuracy score: a classifier trained on a model's digits, tested on real ones."""

import json

import numpy as np
import pytest

import cgan_train.cas as cas_module
from cgan_train.cas import CAS_RECIPE, classification_accuracy_score, real_accuracy_reusable
from cgan_train.data import load_mnist
from cgan_train.evaluate import evaluate
from tests.conftest import COMMITTED_JUDGE, FIXTURE_DATA
from tests.helpers import evaluate_on_fixture

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples


class RealDigits:
    """A stand-in generator that 'draws' the fixture's real training images of each digit."""

    def __init__(self, blank: bool = False):
        self.train = load_mnist(FIXTURE_DATA, "train")
        self.blank = blank
        self.info = type("Info", (), {"num_classes": 10})()

    def sample(self, digit, count, seed=None):
        of_digit = self.train.images[self.train.labels == digit].numpy()
        images = of_digit[np.arange(count) % len(of_digit)]
        return np.zeros_like(images) if self.blank else images


def test_evaluate_reports_the_score_beside_the_real_trained_classifier(exported_dir, tmp_path):
    result = evaluate_on_fixture(
        str(exported_dir / "cgan_generator.onnx"),
        "--samples-per-digit",
        "10",
        "--cas-per-digit",
        "20",
        "--json",
        str(tmp_path / "report.json"),
    )
    assert result.exit_code == 0, result.output
    cas = json.loads((tmp_path / "report.json").read_text())["cas"]
    assert cas["recipe"] == CAS_RECIPE and cas["test_images"] == 100
    for side in ("generated", "real"):
        assert 0 <= cas[side]["overall"] <= 1 and len(cas[side]["per_digit"]) == 10
    assert cas["gap_points"] == pytest.approx(100 * (cas["real"]["overall"] - cas["generated"]["overall"]))
    assert "classification accuracy score" in result.output
    assert f"{cas['gap_points']:.2f} points below real" in result.output


def test_real_images_train_a_better_classifier_than_blank_ones():
    test = load_mnist(FIXTURE_DATA, "test")
    # The fixture is 300 images: the recipe's two epochs are a few steps, too few to learn from;
    # four of batch 32 are 40 steps, enough to tell real digits from blank ones.
    recipe = {**CAS_RECIPE, "epochs": 4, "batch_size": 32}
    real = classification_accuracy_score(RealDigits(), test, per_digit=30, seed=0, recipe=recipe)
    blank = classification_accuracy_score(RealDigits(blank=True), test, per_digit=30, seed=0, recipe=recipe)
    # A blank set teaches nothing: one class for every test image, about a tenth right.
    assert blank["overall"] <= 0.2
    assert real["overall"] >= blank["overall"] + 0.3


def test_the_real_trained_figures_are_reused_only_from_a_report_made_the_same_way(exported_dir, monkeypatch):
    trainings = []
    original = cas_module.train_judge
    monkeypatch.setattr(
        cas_module,
        "train_judge",
        lambda train, *args, **kwargs: trainings.append(len(train)) or original(train, *args, **kwargs),
    )
    model = exported_dir / "cgan_generator.onnx"
    first = evaluate(model, COMMITTED_JUDGE, FIXTURE_DATA, per_digit=10, cas_per_digit=10)
    assert trainings == [300, 100]  # the real training images, then the generated set
    second = evaluate(model, COMMITTED_JUDGE, FIXTURE_DATA, per_digit=10, cas_per_digit=10, earlier=first)
    assert trainings == [300, 100, 100] and second["cas"] == first["cas"]
    test, train = load_mnist(FIXTURE_DATA, "test"), load_mnist(FIXTURE_DATA, "train")
    other_recipe = json.loads(json.dumps(first))
    other_recipe["cas"]["recipe"]["epochs"] += 1
    assert real_accuracy_reusable(other_recipe, test, train) is None
    other_data = json.loads(json.dumps(first))
    other_data["cas"]["real_data_sha256"] = "0" * 64
    assert real_accuracy_reusable(other_data, test, train) is None
    assert real_accuracy_reusable({"cas": None}, test, train) is None
    crafted = json.loads(json.dumps(first))
    crafted["cas"]["real"]["per_digit"][3] = "99%"
    assert real_accuracy_reusable(crafted, test, train) is None
