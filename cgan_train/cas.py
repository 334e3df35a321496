"""Classification Accuracy Score: can generated digits stand in for real ones as training data?

Several classifier recipes, which differ in network, optimiser, epochs and augmentation, are each
trained with several seeds on a generated, labelled set (CAS_PER_DIGIT of every digit) and tested
on the real MNIST test images; beside them, the same recipes and seeds trained on as many real
training images of every digit. The gap between the two is what replacing real data costs, and
the spread over the seeds says how precisely it is known.

The real-trained figures do not depend on the model: `make real-baselines` computes them once into
models/real_baselines.json (baselines.py), and `evaluate` reuses every run there made with the
same recipe, settings, size, seed and data, training only the ones it lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from cgan_train.classifiers import Recipe, classify, fit
from cgan_train.config import is_finite_number
from cgan_train.data import Digits
from cgan_train.metrics import spread

# 1,000 of every digit (a sixth of MNIST's training set), three seeds per recipe: the size and
# epochs at which `make evaluate` (fp32 and int8, nine trainings each) fits 20 minutes on 2 cores.
CAS_PER_DIGIT = 1000
CAS_SEEDS = 3
CAS_RECIPES = {
    # The judge's network and schedule (the one CAS recipe before there were several).
    "judge-cnn-adam": Recipe(
        network="judge-cnn",
        optimiser="adam",
        lr=2e-3,
        epochs=3,
        batch_size=128,
        schedule="one-cycle",
        augmentation="shift",
    ),
    # No convolution, plain SGD with Nesterov momentum, many short epochs, no augmentation.
    "mlp-sgd": Recipe(
        network="pixel-mlp",
        optimiser="sgd",
        lr=0.05,
        epochs=20,
        batch_size=64,
        schedule="cosine",
        augmentation="none",
        weight_decay=5e-4,
        momentum=0.9,
    ),
    # A LeNet-sized CNN, AdamW with a cosine schedule, random rotations, scalings and shifts.
    "small-cnn-adamw-affine": Recipe(
        network="small-cnn",
        optimiser="adamw",
        lr=2e-3,
        epochs=10,
        batch_size=128,
        schedule="cosine",
        augmentation="affine",
        weight_decay=0.05,
    ),
}
# Seed s (0, 1, ...) of a recipe: the classifier starts from torch seed s; its generated set draws
# digit d with seed base + CAS_SEED_OFFSET + SEED_STRIDE s + d (apart from the evaluation's own
# samples, base + SEED_STRIDE r + d), its real set is a random subset (seed REAL_SUBSET_SEED +
# SEED_STRIDE s + d for digit d).
CAS_SEED_OFFSET = 100
SEED_STRIDE = 1000
REAL_SUBSET_SEED = 500


def trained_accuracy(train: Digits, test: Digits, recipe: Recipe, seed: int, num_classes: int = 10) -> dict:
    """Test accuracy, overall and per digit, of `recipe` trained on `train` from seed `seed`."""
    classifier = fit(train, recipe, seed)
    _, predictions = classify(classifier, test.images)
    truth = test.labels.numpy()
    correct = predictions == truth
    return {
        "overall": float(correct.mean()),
        "per_digit": [
            float(correct[truth == digit].mean()) if (truth == digit).any() else None
            for digit in range(num_classes)
        ],
    }


def generated_set(generator, per_digit: int, base_seed: int, index: int) -> Digits:
    from cgan_train.evaluate import sample_digits

    images, labels = sample_digits(generator, per_digit, base_seed + CAS_SEED_OFFSET + SEED_STRIDE * index)
    return Digits(images=torch.from_numpy(images), labels=torch.from_numpy(labels).long(), sha256="generated")


def real_set(train: Digits, per_digit: int, index: int, num_classes: int = 10) -> Digits:
    from cgan_train.evaluate import balanced_subset

    chosen = balanced_subset(train.labels, per_digit, num_classes, REAL_SUBSET_SEED + SEED_STRIDE * index)
    return Digits(images=train.images[chosen], labels=train.labels[chosen], sha256="real subset")


def real_run_key(name: str, recipe: Recipe, per_digit: int, index: int, train: Digits, test: Digits) -> dict:
    """What a real-trained run depends on: a cached run with another key is not reused."""
    return {
        "kind": "cas",
        "recipe": name,
        "settings": recipe.to_dict(),
        "per_digit": per_digit,
        "seed": index,
        "subset_seed": REAL_SUBSET_SEED + SEED_STRIDE * index,
        "real_data_sha256": train.sha256,
        "test_data_sha256": test.sha256,
    }


def is_accuracy_table(table, num_classes: int | None = None) -> bool:
    """{"overall": share, "per_digit": [share or None, ...]}, as trained_accuracy writes it."""

    def is_share(value) -> bool:
        return is_finite_number(value) and 0 <= value <= 1

    return (
        isinstance(table, dict)
        and is_share(table.get("overall"))
        and isinstance(table.get("per_digit"), list)
        and (num_classes is None or len(table["per_digit"]) == num_classes)
        and all(value is None or is_share(value) for value in table["per_digit"])
    )


@dataclass
class CasPlan:
    """The CAS of one evaluation: the real-trained runs the cache has, and the work left (the
    real-trained runs it lacks, every generated-trained run)."""

    recipes: dict[str, Recipe]
    per_digit: int
    seeds: int
    base_seed: int
    baselines: object  # baselines.RealBaselines
    keys: dict  # (recipe, seed) -> the real run's cache key
    cached: dict  # (recipe, seed) -> accuracy, from the cache
    works: list = field(default_factory=list)

    @property
    def trained_real(self) -> int:
        return len(self.keys) - len(self.cached)


def plan_cas(
    generator,
    train: Digits,
    test: Digits,
    per_digit: int = CAS_PER_DIGIT,
    seeds: int = CAS_SEEDS,
    base_seed: int = 0,
    baselines=None,
    recipes: dict[str, Recipe] = CAS_RECIPES,
    num_classes: int = 10,
) -> CasPlan:
    """What a CAS needs: the generated sets are drawn here (generator None: real runs only);
    baselines (a baselines.RealBaselines) gives the real-trained runs it has."""
    from cgan_train.baselines import RealBaselines
    from cgan_train.evaluate import sample_digits
    from cgan_train.workers import CasWork

    baselines = baselines if baselines is not None else RealBaselines(None)
    plan = CasPlan(recipes, per_digit, seeds, base_seed, baselines, {}, {})
    for name, recipe in recipes.items():
        for index in range(seeds):
            key = real_run_key(name, recipe, per_digit, index, train, test)
            plan.keys[name, index] = key
            accuracy = baselines.lookup(key)
            if accuracy is not None and len(accuracy["per_digit"]) == num_classes:
                plan.cached[name, index] = accuracy
            else:
                plan.works.append(CasWork(name, recipe, index, per_digit, num_classes))
    if generator is not None:
        for index in range(seeds):
            images, labels = sample_digits(
                generator, per_digit, base_seed + CAS_SEED_OFFSET + SEED_STRIDE * index
            )
            plan.works += [
                CasWork(name, recipe, index, per_digit, num_classes, images, labels)
                for name, recipe in recipes.items()
            ]
    return plan


def real_results(plan: CasPlan, results: dict) -> dict[str, list[dict]]:
    """Every recipe's real-trained accuracies, seed by seed, from the cache or just trained (and
    then added to the plan's cache)."""
    real = {}
    for name in plan.recipes:
        real[name] = []
        for index in range(plan.seeds):
            accuracy = plan.cached.get((name, index))
            if accuracy is None:
                accuracy = results["cas", name, index, "real"]
                plan.baselines.add(plan.keys[name, index], accuracy)
            real[name].append(accuracy)
    return real


def cas_section(plan: CasPlan, results: dict, test: Digits, train: Digits) -> dict:
    """The CAS section of an evaluation report: every recipe, every seed, generated beside real."""
    real = real_results(plan, results)
    seeds, per_digit, base_seed = plan.seeds, plan.per_digit, plan.base_seed
    runs = len(plan.keys)
    return {
        "per_digit": per_digit,
        "seeds": seeds,
        "generated_images": f"{per_digit} of every digit; seed s draws digit d with seed "
        f"{base_seed} + {CAS_SEED_OFFSET} + {SEED_STRIDE} s + d",
        "real_images": f"{per_digit} MNIST training images of every digit; seed s: random, seed "
        f"{REAL_SUBSET_SEED} + {SEED_STRIDE} s + d",
        "real_from": f"{runs - plan.trained_real} of {runs} runs from {plan.baselines.path}, "
        f"{plan.trained_real} trained in this evaluation",
        "classifier_seeds": "seed s trains from torch seed s, on generated and on real images alike",
        "test_images": len(test),
        "test_data_sha256": test.sha256,
        "real_data_sha256": train.sha256,
        "recipes": {
            name: recipe_report(
                recipe.to_dict(),
                [results["cas", name, index, "generated"] for index in range(seeds)],
                real[name],
            )
            for name, recipe in plan.recipes.items()
        },
    }


def recipe_report(settings: dict, generated: list[dict], real: list[dict]) -> dict:
    """One recipe's figures over its seeds: accuracy (mean, spread) trained on generated and on
    real images, overall and per digit; the gap in points, seed by seed; the weakest digit."""
    digits = range(len(generated[0]["per_digit"]))

    def side(runs: list[dict]) -> dict:
        return {
            "overall": spread([run["overall"] for run in runs]),
            "per_digit": [spread([run["per_digit"][digit] for run in runs]) for digit in digits],
        }

    def gaps(pick: Callable[[dict], float | None]) -> dict:
        pairs = [(pick(ours), pick(theirs)) for ours, theirs in zip(generated, real, strict=True)]
        return spread([None if None in pair else 100 * (pair[1] - pair[0]) for pair in pairs])

    digit_gaps = [gaps(lambda run, digit=digit: run["per_digit"][digit]) for digit in digits]
    known = [digit for digit in digits if digit_gaps[digit]["mean"] is not None]
    weakest = max(known, key=lambda digit: digit_gaps[digit]["mean"]) if known else None
    return {
        "settings": settings,
        "generated": side(generated),
        "real": side(real),
        "gap_points": gaps(lambda run: run["overall"]),
        "digit_gap_points": digit_gaps,
        "weakest_digit": None if weakest is None else {"digit": weakest, "gap_points": digit_gaps[weakest]},
    }


def progress_line(note: Callable[[str], None]) -> Callable[[str, object, float], None]:
    """A progress callback for workers.run_all that says what finished, its figure and its time."""

    def report(label: str, result, seconds: float) -> None:
        if isinstance(result, dict) and "overall" in result:
            note(f"{label} {result['overall']:.2%} ({seconds:.0f} s)")
        else:
            note(f"{label} ({seconds:.0f} s)")

    return report
