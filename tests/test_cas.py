"""The classification accuracy score: several recipes, each trained with several seeds on a model's
digits and on real ones, tested on real ones; the real-trained runs cached by their settings."""

import json

import numpy as np
import pytest

import cgan_train.cas as cas_module
from cgan_train.baselines import RealBaselines
from cgan_train.cas import (
    CAS_RECIPES,
    plan_cas,
    real_results,
    real_run_key,
    recipe_report,
    trained_accuracy,
)
from cgan_train.classifiers import Recipe
from cgan_train.data import Digits, load_mnist
from cgan_train.workers import run_all
from tests.conftest import FIXTURE_DATA
from tests.helpers import evaluate_on_fixture


def _run(overall: float, per_digit: list[float]) -> dict:
    return {"overall": overall, "per_digit": per_digit}


def test_a_recipe_s_figures_are_the_mean_and_spread_over_its_seeds_and_the_gap_seed_by_seed():
    generated = [
        _run(0.97, [0.96, 0.98]),
        _run(0.98, [0.98, 0.98]),
        _run(0.96, [0.94, 0.98]),
    ]
    real = [_run(0.99, [0.99, 0.99]), _run(0.99, [0.99, 0.99]), _run(0.98, [0.97, 0.99])]
    report = recipe_report({"network": "pixel-mlp"}, generated, real)
    overall = report["generated"]["overall"]
    assert overall["mean"] == pytest.approx(0.97) and overall["std"] == pytest.approx(0.01)
    assert (overall["min"], overall["max"]) == (0.96, 0.98)
    assert report["real"]["overall"]["mean"] == pytest.approx(0.9866667)
    assert report["generated"]["per_digit"][0]["mean"] == pytest.approx(0.96)
    assert report["generated"]["per_digit"][0]["std"] == pytest.approx(0.02)
    gap = report["gap_points"]  # real - generated, seed by seed, in points: 2, 1, 2
    assert gap["values"] == pytest.approx([2.0, 1.0, 2.0])
    assert gap["mean"] == pytest.approx(100 * (report["real"]["overall"]["mean"] - overall["mean"]))
    assert gap["std"] == pytest.approx(np.std([2.0, 1.0, 2.0], ddof=1))
    # Digit 0: gaps 3, 1, 3 points; digit 1: 1, 1, 1.
    assert report["weakest_digit"]["digit"] == 0
    assert report["weakest_digit"]["gap_points"]["mean"] == pytest.approx(7 / 3)


def test_the_recipes_differ_in_network_optimiser_epochs_and_augmentation():
    recipes = list(CAS_RECIPES.values())
    assert len(recipes) >= 3
    for part in ("network", "optimiser", "epochs", "augmentation"):
        assert len({getattr(recipe, part) for recipe in recipes}) == len(recipes), part
    assert "pixel-mlp" in {recipe.network for recipe in recipes}


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


@pytest.mark.slow
def test_real_images_train_a_better_classifier_than_blank_ones():
    from cgan_train.cas import generated_set

    test = load_mnist(FIXTURE_DATA, "test")
    # The fixture is 300 images: enough steps for every recipe to tell real digits from blank ones.
    for name, recipe in CAS_RECIPES.items():
        recipe = Recipe(**{**recipe.to_dict(), "epochs": max(recipe.epochs, 8), "batch_size": 32})
        real = trained_accuracy(generated_set(RealDigits(), 30, 0, 0), test, recipe, seed=0)
        blank = trained_accuracy(generated_set(RealDigits(blank=True), 30, 0, 0), test, recipe, seed=0)
        # A blank set teaches nothing: one class for every test image, about a tenth right.
        assert blank["overall"] <= 0.2, name
        assert real["overall"] >= blank["overall"] + 0.3, name


def test_real_trained_runs_are_reused_only_when_made_the_same_way(tmp_path, monkeypatch):
    trainings = []

    def pretend(train: Digits, test: Digits, recipe: Recipe, seed: int, num_classes: int = 10) -> dict:
        trainings.append((recipe.network, seed, len(train)))
        return {"overall": 0.9, "per_digit": [0.9] * num_classes}

    monkeypatch.setattr(cas_module, "trained_accuracy", pretend)
    train, test = load_mnist(FIXTURE_DATA, "train"), load_mnist(FIXTURE_DATA, "test")
    path = tmp_path / "real_baselines.json"

    def real_runs(seeds: int, recipes=CAS_RECIPES, write: bool = True) -> tuple[int, dict]:
        """What make real-baselines does: the runs the file lacks trained, the file written."""
        plan = plan_cas(
            None, train, test, per_digit=10, seeds=seeds, baselines=RealBaselines(path), recipes=recipes
        )
        real = real_results(plan, run_all(plan.works, FIXTURE_DATA, workers=1))
        if write:
            plan.baselines.write(path, list(plan.keys.values()))
        return plan.trained_real, real

    trained, _ = real_runs(seeds=2)
    assert trained == len(trainings) == 2 * len(CAS_RECIPES)
    assert {size for _, _, size in trainings} == {100}  # 10 of every digit
    trainings.clear()
    trained, real = real_runs(seeds=2)
    assert trained == 0 and not trainings
    assert all(len(runs) == 2 for runs in real.values())
    # A third seed, other settings: those runs are trained, the others reused.
    assert real_runs(seeds=3)[0] == len(CAS_RECIPES)
    other = {
        name: Recipe(**{**recipe.to_dict(), "epochs": recipe.epochs + 1})
        for name, recipe in CAS_RECIPES.items()
    }
    assert real_runs(seeds=2, recipes=other, write=False)[0] == 2 * len(CAS_RECIPES)
    # Other data: the key holds both data sets' digests.
    key = real_run_key("mlp-sgd", CAS_RECIPES["mlp-sgd"], 10, 0, train, test)
    assert key["real_data_sha256"] == train.sha256 and key["test_data_sha256"] == test.sha256


@pytest.mark.faults
def test_a_crafted_or_unreadable_baselines_file_is_not_trusted(tmp_path):
    train, test = load_mnist(FIXTURE_DATA, "train"), load_mnist(FIXTURE_DATA, "test")
    key = real_run_key("mlp-sgd", CAS_RECIPES["mlp-sgd"], 10, 0, train, test)
    path = tmp_path / "real_baselines.json"
    good = {"overall": 0.9, "per_digit": [0.9] * 10}
    path.write_text(
        json.dumps({"format": "cgan-real-baselines-v1", "entries": [{"key": key, "result": good}]})
    )
    assert RealBaselines(path).lookup(key) == good
    for result in ({"overall": "99%", "per_digit": [0.9] * 10}, {"overall": 1.5, "per_digit": []}):
        path.write_text(
            json.dumps({"format": "cgan-real-baselines-v1", "entries": [{"key": key, "result": result}]})
        )
        assert RealBaselines(path).lookup(key) is None
    ceiling = {**key, "kind": "ceiling"}  # a ceiling must hold scores, not an accuracy table
    path.write_text(
        json.dumps({"format": "cgan-real-baselines-v1", "entries": [{"key": ceiling, "result": good}]})
    )
    assert RealBaselines(path).lookup(ceiling) is None
    path.write_text("{not json")
    assert RealBaselines(path).lookup(key) is None
    assert RealBaselines(tmp_path / "absent.json").lookup(key) is None


@pytest.mark.slow
def test_evaluate_reports_every_recipe_over_its_seeds_beside_the_real_trained_ones(exported_dir, tmp_path):
    result = evaluate_on_fixture(
        str(exported_dir / "cgan_generator.onnx"),
        "--samples-per-digit",
        "10",
        "--draws",
        "1",
        "--cas-per-digit",
        "10",
        "--cas-seeds",
        "2",
        "--real-baselines",
        str(tmp_path / "absent.json"),
        "--json",
        str(tmp_path / "report.json"),
    )
    assert result.exit_code == 0, result.output
    cas = json.loads((tmp_path / "report.json").read_text())["cas"]
    assert cas["seeds"] == 2 and cas["per_digit"] == 10 and cas["test_images"] == 100
    assert cas["real_from"].startswith("0 of 6 runs from")
    assert set(cas["recipes"]) == set(CAS_RECIPES)
    for name, recipe in cas["recipes"].items():
        assert recipe["settings"] == CAS_RECIPES[name].to_dict()
        for side in ("generated", "real"):
            assert len(recipe[side]["overall"]["values"]) == 2 and len(recipe[side]["per_digit"]) == 10
            assert 0 <= recipe[side]["overall"]["mean"] <= 1
        assert recipe["gap_points"]["mean"] == pytest.approx(
            100 * (recipe["real"]["overall"]["mean"] - recipe["generated"]["overall"]["mean"])
        )
        assert f"{name}:" in result.output
    assert "classification accuracy score" in result.output
