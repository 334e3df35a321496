"""The judge: an MNIST classifier the project trains itself, to score generators with.

Its logits say which digit an image is; its penultimate layer is the feature space in which
generated and real digits are compared (Frechet distance, precision and recall).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cgan_runtime.files import atomic_path
from cgan_runtime.streams import stderr
from cgan_train.data import Digits
from cgan_train.torch_files import UnreadableTorchFile, load_verified

FORMAT = "cgan-judge-v1"
RECORD_KEYS = ("weights", "test_accuracy", "test_images", "test_data_sha256", "training_data_sha256")
FEATURE_DIM = 128
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BLACK = -MNIST_MEAN / MNIST_STD  # a background pixel, normalised
MAX_SHIFT_PIXELS = 2  # training augmentation: random translations of up to this many pixels


class JudgeError(Exception):
    """The judge file is missing, unreadable, or not a judge."""


class Judge(nn.Module):
    """A small VGG-style CNN: three conv stages -> 128 features -> 10 logits."""

    def __init__(self, num_classes: int = 10):
        super().__init__()

        def conv(in_channels: int, out_channels: int) -> list[nn.Module]:
            return [
                nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(),
            ]

        self.body = nn.Sequential(
            *conv(1, 32),
            *conv(32, 32),
            nn.MaxPool2d(2),  # 28 -> 14
            *conv(32, 64),
            *conv(64, 64),
            nn.MaxPool2d(2),  # 14 -> 7
            *conv(64, 128),
            nn.MaxPool2d(2),  # 7 -> 3
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, FEATURE_DIM),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float [B, 1, 28, 28], normalised -> (features [B, 128], logits [B, 10])."""
        features = self.body(images)
        return features, self.head(self.dropout(features))


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> the judge's float input [B, 1, 28, 28]."""
    return images.unsqueeze(1).float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)


@torch.no_grad()
def judge_images(
    judge: Judge, images: np.ndarray | torch.Tensor, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] -> (features float64 [N, 128], predicted digits int64 [N])."""
    images = torch.as_tensor(images)
    judge.eval()
    features, predictions = [], []
    for start in range(0, len(images), batch_size):
        batch_features, logits = judge(normalise(images[start : start + batch_size]))
        features.append(batch_features.double())
        predictions.append(logits.argmax(dim=1))
    return torch.cat(features).numpy(), torch.cat(predictions).numpy()


def train_judge(
    train: Digits,
    test: Digits,
    epochs: int = 6,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    show_progress: bool = True,
) -> tuple[Judge, float]:
    """Train a judge on `train`; return it with its accuracy on `test`."""
    torch.manual_seed(seed)
    judge = Judge()
    optimiser = torch.optim.Adam(judge.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch)
    for epoch in range(epochs):
        judge.train()
        order = torch.randperm(len(train))
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"judge epoch {epoch + 1}/{epochs}",
            unit="step",
            disable=not show_progress,
            mininterval=0.5,
            file=stderr(),
            dynamic_ncols=True,
        )
        for step in bar:
            batch = order[step * batch_size : (step + 1) * batch_size]
            images = _random_shift(normalise(train.images[batch]))
            _, logits = judge(images)
            loss = nn.functional.cross_entropy(logits, train.labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
    _, predictions = judge_images(judge, test.images)
    accuracy = float((predictions == test.labels.numpy()).mean())
    return judge, accuracy


def _random_shift(images: torch.Tensor) -> torch.Tensor:
    """Translate each image by a random whole number of pixels (zero-padded), all at once."""
    batch, _, height, width = images.shape
    pad = MAX_SHIFT_PIXELS
    padded = nn.functional.pad(images, (pad, pad, pad, pad), value=BLACK)
    dy = torch.randint(0, 2 * pad + 1, (batch, 1, 1))
    dx = torch.randint(0, 2 * pad + 1, (batch, 1, 1))
    rows = (torch.arange(height).view(1, height, 1) + dy).expand(batch, height, width)
    cols = (torch.arange(width).view(1, 1, width) + dx).expand(batch, height, width)
    index = torch.arange(batch).view(batch, 1, 1).expand(batch, height, width)
    return padded[index, 0, rows, cols].unsqueeze(1)


def save_judge(path: Path, judge: Judge, test_accuracy: float, train: Digits, test: Digits) -> None:
    """Write the judge with its record: test accuracy, and the data it was trained and tested on."""
    record = {
        "format": FORMAT,
        "weights": judge.state_dict(),
        "test_accuracy": test_accuracy,
        "test_images": len(test),
        "test_data_sha256": test.sha256,
        "training_data_sha256": train.sha256,
    }
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        torch.save(record, handle)


def load_judge(path: Path) -> tuple[Judge, dict]:
    """Load a judge (weights_only=True); returns it with its record (test accuracy, data)."""
    path = Path(path)
    if not path.is_file():
        raise JudgeError(f"judge not found: {path}; train one with `cgan-train judge`")
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
    if (
        not isinstance(accuracy, float)
        or not 0 <= accuracy <= 1
        or not isinstance(images, int)
        or not all(isinstance(state[key], str) for key in ("test_data_sha256", "training_data_sha256"))
    ):
        raise JudgeError(
            f"{path}: the judge's record (test accuracy, images, data) is not what `cgan-train judge` writes"
        )
    judge = Judge()
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
