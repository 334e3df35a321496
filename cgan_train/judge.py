"""The judges: MNIST classifiers the project trains itself, to score generators with.

A judge's logits say which digit an image is; its penultimate layer is the feature space in which
generated and real digits are compared (Frechet distance, precision and recall). The networks are
in classifiers.py; the set of judges `evaluate` uses, and their digests, in judges.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cgan_runtime.files import atomic_path
from cgan_train.classifiers import FEATURE_DIM, NETWORKS, Judge, Recipe, build_network, classify, fit
from cgan_train.data import Digits
from cgan_train.torch_files import UnreadableTorchFile, load_verified

__all__ = ["FEATURE_DIM", "Judge", "JudgeError", "judge_images", "load_judge", "save_judge", "train_judge"]

FORMAT = "cgan-judge-v1"
RECORD_KEYS = ("weights", "test_accuracy", "test_images", "test_data_sha256", "training_data_sha256")
# A file without an "architecture" entry (models/judge.pt, written before there were others) holds
# the judge CNN.
DEFAULT_ARCHITECTURE = "judge-cnn"
# The judge CNN's recipe (`cgan-train judge`): Adam with a one-cycle schedule, random shifts.
JUDGE_RECIPE = Recipe(
    network="judge-cnn", optimiser="adam", lr=2e-3, epochs=6, batch_size=128, augmentation="shift"
)


class JudgeError(Exception):
    """The judge file is missing, unreadable, or not a judge."""


def judge_images(
    judge: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] -> (features float64 [N, D], predicted digits int64 [N])."""
    return classify(judge, images, batch_size)


def accuracy_on(network: nn.Module, test: Digits) -> float:
    _, predictions = classify(network, test.images)
    return float((predictions == test.labels.numpy()).mean())


def train_judge(
    train: Digits,
    test: Digits,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    show_progress: bool = True,
    recipe: Recipe = JUDGE_RECIPE,
) -> tuple[nn.Module, float]:
    """Train a judge on `train` (the judge CNN's recipe with these epochs, batch size and learning
    rate, unless another recipe is given); return it with its accuracy on `test`."""
    if recipe == JUDGE_RECIPE:
        recipe = Recipe(**{**recipe.to_dict(), "epochs": epochs, "batch_size": batch_size, "lr": lr})
    judge = fit(train, recipe, seed, show_progress=show_progress, description="judge")
    return judge, accuracy_on(judge, test)


def save_judge(
    path: Path,
    judge: nn.Module,
    test_accuracy: float,
    train: Digits,
    test: Digits,
    architecture: str = DEFAULT_ARCHITECTURE,
    recipe: Recipe | None = None,
    seed: int | None = None,
) -> None:
    """Write the judge with its record: test accuracy, the data it was trained and tested on, and
    (for any network but the judge CNN) its architecture."""
    record = {
        "format": FORMAT,
        "weights": judge.state_dict(),
        "test_accuracy": test_accuracy,
        "test_images": len(test),
        "test_data_sha256": test.sha256,
        "training_data_sha256": train.sha256,
    }
    if architecture != DEFAULT_ARCHITECTURE:
        record["architecture"] = architecture
    if recipe is not None:
        record["recipe"] = recipe.to_dict()
    if seed is not None:
        record["seed"] = seed
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(record, handle)


def load_judge(path: Path) -> tuple[nn.Module, dict]:
    """Load a judge (weights_only=True); returns it with its record (test accuracy, data)."""
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"judge not found: {path}; train one with `cgan-train judge` (or make judges)")
    try:
        state = load_verified(path)
    except UnreadableTorchFile as error:
        raise JudgeError(f"{path}: not a readable judge file: {error}") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise JudgeError(f"{path}: not a cgan judge (expected format {FORMAT})")
    missing = [key for key in RECORD_KEYS if key not in state]
    if missing:
        raise JudgeError(f"{path}: the judge's record lacks {', '.join(missing)}")
    accuracy, images = state["test_accuracy"], state["test_images"]
    architecture = state.setdefault("architecture", DEFAULT_ARCHITECTURE)
    if (
        not isinstance(accuracy, float)
        or not 0 <= accuracy <= 1
        or not isinstance(images, int)
        or not all(isinstance(state[key], str) for key in ("test_data_sha256", "training_data_sha256"))
        or architecture not in NETWORKS
    ):
        raise JudgeError(
            f"{path}: the judge's record (test accuracy, images, data) is not what `cgan-train judge` writes"
        )
    judge = build_network(architecture)
    weights = state.pop("weights")
    try:
        judge.load_state_dict(weights)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise JudgeError(
            f"{path}: its weights do not fit the judge's network ({type(error).__name__})"
        ) from error
    if not all(
        torch.isfinite(tensor).all() for tensor in judge.state_dict().values() if tensor.is_floating_point()
    ):
        raise JudgeError(f"{path}: the judge's weights hold NaN or Inf")
    judge.eval()
    return judge, state
