"""Classification Accuracy Score: can generated digits stand in for real ones as training data?

A classifier (the judge's network, one fixed recipe and budget) is trained on a generated, labelled
set the size of MNIST's training set and tested on the real test images; beside it, the same recipe
trained on the real training images. The gap between the two is what replacing real data costs.
"""

from __future__ import annotations

import torch

from cgan_runtime.generator import DigitGenerator
from cgan_train.config import is_finite_number
from cgan_train.data import Digits
from cgan_train.judge import judge_images, train_judge

CAS_PER_DIGIT = 6000  # MNIST's training set has 60,000 images, about 6,000 of each digit
# The recipe of both classifiers: the judge's network and schedule at a budget that fits
# `make evaluate` on a 2-core CPU.
CAS_RECIPE = {"network": "judge", "epochs": 2, "batch_size": 128, "lr": 2e-3, "seed": 0}
# Digit d of the generated training set is drawn with seed base + CAS_SEED_OFFSET + d, apart from
# the seeds of the evaluation's samples (base + d).
CAS_SEED_OFFSET = 100


def classification_accuracy_score(
    generator: DigitGenerator, test: Digits, per_digit: int, seed: int, recipe: dict = CAS_RECIPE
) -> dict:
    """Accuracy on the real test set of the recipe trained on per_digit generated images of every
    digit (drawn with seeds seed + CAS_SEED_OFFSET + d), overall and per digit."""
    from cgan_train.evaluate import sample_digits

    images, labels = sample_digits(generator, per_digit, seed + CAS_SEED_OFFSET)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    generated = Digits(
        images=torch.from_numpy(images)[order],
        labels=torch.from_numpy(labels).long()[order],
        sha256="generated",
    )
    return trained_accuracy(generated, test, generator.info.num_classes, recipe)


def trained_accuracy(train: Digits, test: Digits, num_classes: int, recipe: dict = CAS_RECIPE) -> dict:
    """Test accuracy, overall and per digit, of the recipe trained on `train`."""
    settings = {key: value for key, value in recipe.items() if key != "network"}
    classifier, _ = train_judge(train, test, show_progress=False, **settings)
    _, predictions = judge_images(classifier, test.images)
    truth = test.labels.numpy()
    correct = predictions == truth
    return {
        "overall": float(correct.mean()),
        "per_digit": [
            float(correct[truth == digit].mean()) if (truth == digit).any() else None
            for digit in range(num_classes)
        ],
    }


def real_accuracy_reusable(
    earlier: dict | None, test: Digits, train: Digits, num_classes: int = 10
) -> dict | None:
    """The real-trained figures of an earlier report's CAS, if they were made by this recipe on
    this data (training on real images costs as much as on generated ones)."""
    cas = (earlier or {}).get("cas")
    if (
        isinstance(cas, dict)
        and cas.get("recipe") == CAS_RECIPE
        and cas.get("test_data_sha256") == test.sha256
        and cas.get("real_data_sha256") == train.sha256
        and _is_accuracy_table(cas.get("real"), num_classes)
    ):
        return cas["real"]
    return None


def _is_accuracy_table(table, num_classes: int) -> bool:
    """{"overall": share, "per_digit": [share or None, ...]}, as trained_accuracy writes it."""

    def is_share(value) -> bool:
        return is_finite_number(value) and 0 <= value <= 1

    return (
        isinstance(table, dict)
        and is_share(table.get("overall"))
        and isinstance(table.get("per_digit"), list)
        and len(table["per_digit"]) == num_classes
        and all(value is None or is_share(value) for value in table["per_digit"])
    )


def cas_report(generated: dict, real: dict, per_digit: int, test: Digits, train: Digits, seed: int) -> dict:
    return {
        "recipe": CAS_RECIPE,
        "generated_images": f"{per_digit} of every digit (seed {seed} + {CAS_SEED_OFFSET} + d)",
        "real_images": f"the {len(train)} MNIST training images",
        "test_images": len(test),
        "test_data_sha256": test.sha256,
        "real_data_sha256": train.sha256,
        "generated": generated,
        "real": real,
        "gap_points": 100 * (real["overall"] - generated["overall"]),
    }
