"""The MNIST classifiers the evaluation trains: the judges' networks and the CAS recipes' networks,
with one training loop for all of them (optimiser, schedule and augmentation by name).

Every network maps normalised images [B, 1, 28, 28] to (features, logits): its penultimate layer
is the feature space a judge compares generated and real digits in.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from cgan_runtime.streams import stderr
from cgan_train.data import Digits

FEATURE_DIM = 128  # the judge CNN's
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BLACK = -MNIST_MEAN / MNIST_STD  # a background pixel, normalised
MAX_SHIFT_PIXELS = 2  # the shift augmentation: random translations of up to this many pixels
# The affine augmentation: a random rotation, scale and translation of every image.
AFFINE_DEGREES, AFFINE_SCALE, AFFINE_SHIFT_PIXELS = 12.0, 0.1, 2.0


def _conv(in_channels: int, out_channels: int, kernel: int = 3) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


class Judge(nn.Module):
    """The judge CNN (models/judge.pt), VGG-style: five 3x3 convolutions with batch norm in three
    stages -> 128 features -> 10 logits."""

    feature_dim = FEATURE_DIM

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(1, 32),
            *_conv(32, 32),
            nn.MaxPool2d(2),  # 28 -> 14
            *_conv(32, 64),
            *_conv(64, 64),
            nn.MaxPool2d(2),  # 14 -> 7
            *_conv(64, 128),
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


class WideKernelCNN(nn.Module):
    """Another judge: three convolutions (5x5, 5x5, 3x3; 24, 48, 96 channels) with batch norm,
    then 256 features with batch norm -> 10 logits. Shallower and wider-kernelled than the judge."""

    feature_dim = 256

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(1, 24, 5),
            nn.MaxPool2d(2),  # 28 -> 14
            *_conv(24, 48, 5),
            nn.MaxPool2d(2),  # 14 -> 7
            *_conv(48, 96),
            nn.MaxPool2d(2),  # 7 -> 3
            nn.Flatten(),
            nn.Linear(96 * 3 * 3, self.feature_dim, bias=False),
            nn.BatchNorm1d(self.feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.25)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, self.head(self.dropout(features))


class PixelMLP(nn.Module):
    """No convolution at all: the 784 pixels -> 512 -> 256 (the features) -> 10 logits."""

    feature_dim = 256

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Dropout(0.2),
            nn.Linear(512, self.feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, self.head(self.dropout(features))


class SmallCNN(nn.Module):
    """A LeNet-sized CNN for the CAS: two 5x5 convolutions (16, 32 channels) with batch norm ->
    128 features -> 10 logits; about a seventh of the judge's arithmetic."""

    feature_dim = 128

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            *_conv(1, 16, 5),
            nn.MaxPool2d(2),  # 28 -> 14
            *_conv(16, 32, 5),
            nn.MaxPool2d(2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, self.feature_dim),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(self.feature_dim, num_classes)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return features, self.head(self.dropout(features))


NETWORKS: dict[str, type[nn.Module]] = {
    "judge-cnn": Judge,
    "wide-kernel-cnn": WideKernelCNN,
    "pixel-mlp": PixelMLP,
    "small-cnn": SmallCNN,
}
OPTIMISERS = ("adam", "adamw", "sgd")
SCHEDULES = ("one-cycle", "cosine")
AUGMENTATIONS = ("none", "shift", "affine")


@dataclass(frozen=True)
class Recipe:
    """How a classifier is trained: the network, its optimiser and schedule, the augmentation."""

    network: str
    optimiser: str
    lr: float
    epochs: int
    batch_size: int
    schedule: str = "one-cycle"
    augmentation: str = "none"
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd's (Nesterov)

    def __post_init__(self):
        if self.network not in NETWORKS or self.optimiser not in OPTIMISERS:
            raise ValueError(f"unknown network or optimiser: {self.network}, {self.optimiser}")
        if self.schedule not in SCHEDULES or self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown schedule or augmentation: {self.schedule}, {self.augmentation}")

    def to_dict(self) -> dict:
        return asdict(self)


def build_network(name: str) -> nn.Module:
    return NETWORKS[name]()


def normalise(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 28, 28] -> a classifier's float input [B, 1, 28, 28]."""
    return images.unsqueeze(1).float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD)


@torch.no_grad()
def classify(
    network: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] -> (features float64 [N, D], predicted digits int64 [N])."""
    images = torch.as_tensor(images)
    network.eval()
    features, predictions = [], []
    for start in range(0, len(images), batch_size):
        batch_features, logits = network(normalise(images[start : start + batch_size]))
        features.append(batch_features.double())
        predictions.append(logits.argmax(dim=1))
    return torch.cat(features).numpy(), torch.cat(predictions).numpy()


def fit(
    train: Digits, recipe: Recipe, seed: int, show_progress: bool = False, description: str = "training"
) -> nn.Module:
    """A network trained on `train` by `recipe`, from torch seed `seed`; returned in eval mode."""
    torch.manual_seed(seed)
    network = build_network(recipe.network)
    optimiser = _optimiser(recipe, network)
    steps_per_epoch = math.ceil(len(train) / recipe.batch_size)
    total_steps = recipe.epochs * steps_per_epoch
    if recipe.schedule == "one-cycle":
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=recipe.lr, total_steps=total_steps)
    else:
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)
    augment = {"none": lambda images: images, "shift": random_shift, "affine": random_affine}[
        recipe.augmentation
    ]
    for epoch in range(recipe.epochs):
        network.train()
        order = torch.randperm(len(train))
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"{description} epoch {epoch + 1}/{recipe.epochs}",
            unit="step",
            disable=not show_progress,
            mininterval=0.5,
            file=stderr(),
            dynamic_ncols=True,
        )
        for step in bar:
            batch = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
            _, logits = network(augment(normalise(train.images[batch])))
            loss = nn.functional.cross_entropy(logits, train.labels[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 50 == 0:
                bar.set_postfix(loss=f"{loss.item():.4f}")
        bar.close()
    return network.eval()


def _optimiser(recipe: Recipe, network: nn.Module) -> torch.optim.Optimizer:
    if recipe.optimiser == "adam":
        return torch.optim.Adam(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimiser == "adamw":
        return torch.optim.AdamW(network.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    return torch.optim.SGD(
        network.parameters(),
        lr=recipe.lr,
        momentum=recipe.momentum,
        nesterov=recipe.momentum > 0,
        weight_decay=recipe.weight_decay,
    )


def random_shift(images: torch.Tensor) -> torch.Tensor:
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


def random_affine(images: torch.Tensor) -> torch.Tensor:
    """Rotate (up to AFFINE_DEGREES), scale (1 +- AFFINE_SCALE) and translate (up to
    AFFINE_SHIFT_PIXELS) each image at random, bilinearly, the background black."""
    batch, _, height, _ = images.shape
    angle = (torch.rand(batch) * 2 - 1) * math.radians(AFFINE_DEGREES)
    scale = 1 + (torch.rand(batch) * 2 - 1) * AFFINE_SCALE
    shift = (torch.rand(batch, 2) * 2 - 1) * (2 * AFFINE_SHIFT_PIXELS / height)  # grid units: [-1, 1]
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    # grid_sample pads with 0; sampling (images - BLACK) and adding BLACK back pads with black.
    warped = nn.functional.grid_sample(images - BLACK, grid, align_corners=False, padding_mode="zeros")
    return warped + BLACK
