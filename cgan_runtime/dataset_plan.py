"""What a data set holds, image by image, before anything is drawn: its splits, their shards, and
each image's label and noise, every one a function of (seed, split, index) alone. Any worker can
draw any shard, in any order, and the set is the same bytes whatever the engine.

Labels: a split of N = per_digit x classes images is shuffled by a keyed permutation of 0..N-1
(a Feistel network over Philox, walked back into range), and image i gets label perm(i) mod
classes: exactly per_digit of every digit, in an order no worker has to hold whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cgan_runtime.noise import STREAMS, noise_rows, philox4x32

SPLITS = ("train", "test")
DEFAULT_SHARD_SIZE = 10_000
MAX_SHARD_SIZE = 1_000_000  # a shard is drawn whole in memory: 784 MB of 28 x 28 images at most
NOISE_SCHEME = "philox4x32-10 box-muller v1"  # recorded in the manifest; another scheme, another set
MAX_CLASSES = 256  # labels are stored as bytes, as MNIST's IDX files hold them
_FEISTEL_ROUNDS = 8
_LABEL_STREAM = 0x100  # added to the split's noise stream: the shuffle's keys never meet the noise's


@dataclass(frozen=True)
class Shard:
    """Images start..stop-1 of a split, the number-th of its count shards."""

    split: str
    number: int
    count: int
    start: int
    stop: int

    @property
    def key(self) -> str:
        return f"{self.split}-{self.number:05d}"

    @property
    def size(self) -> int:
        return self.stop - self.start


def check_num_classes(num_classes: int) -> None:
    """A set's labels are bytes: a model of more digits would have its labels wrap around."""
    if not 1 <= num_classes <= MAX_CLASSES:
        raise ValueError(
            f"the model draws {num_classes:,} digits; a set's labels are bytes, as MNIST's, so at most "
            f"{MAX_CLASSES}"
        )


@dataclass(frozen=True)
class Plan:
    """per_digit: images of every digit in each split ({"train": 6000, "test": 1000})."""

    per_digit: dict[str, int]
    seed: int
    num_classes: int
    shard_size: int = DEFAULT_SHARD_SIZE

    def __post_init__(self):
        if set(self.per_digit) - set(SPLITS) or "train" not in self.per_digit:
            raise ValueError(f"splits must be train and optionally test, got {sorted(self.per_digit)}")
        if not 1 <= self.shard_size <= MAX_SHARD_SIZE:
            raise ValueError(f"shard size must be in 1-{MAX_SHARD_SIZE:,}, got {self.shard_size}")
        check_num_classes(self.num_classes)

    @property
    def splits(self) -> list[str]:
        return [split for split in SPLITS if self.per_digit.get(split)]

    def split_size(self, split: str) -> int:
        return self.per_digit[split] * self.num_classes

    @property
    def total(self) -> int:
        return sum(self.split_size(split) for split in self.splits)

    def shards(self, split: str | None = None) -> list[Shard]:
        found = []
        for name in [split] if split else self.splits:
            size = self.split_size(name)
            count = -(-size // self.shard_size)
            for number in range(count):
                start = number * self.shard_size
                found.append(Shard(name, number, count, start, min(size, start + self.shard_size)))
        return found

    def labels(self, split: str, start: int, stop: int) -> np.ndarray:
        """uint8 labels of images start..stop-1 of split."""
        indices = np.arange(start, stop, dtype=np.uint64)
        stream = _LABEL_STREAM + STREAMS[split]
        positions = shuffled_positions(indices, self.split_size(split), self.seed, stream)
        return (positions % np.uint64(self.num_classes)).astype(np.uint8)

    def noise(self, split: str, start: int, stop: int, latent_dim: int) -> np.ndarray:
        """float32 [stop - start, latent_dim]: the noise of images start..stop-1 of split."""
        return noise_rows(self.seed, start, stop - start, latent_dim, stream=split)

    def record(self) -> dict:
        """What a manifest holds of the plan: a set resumes only under the same one."""
        return {
            "per_digit": dict(self.per_digit),
            "seed": self.seed,
            "num_classes": self.num_classes,
            "shard_size": self.shard_size,
            "noise": NOISE_SCHEME,
        }


def shuffled_positions(indices: np.ndarray, total: int, seed: int, stream: int) -> np.ndarray:
    """A keyed permutation of 0..total-1 at indices (uint64): each index's place, computed alone."""
    bits = max(2, (total - 1).bit_length())
    bits += bits % 2  # a balanced Feistel network: two halves of bits / 2
    positions = _feistel(indices, bits, seed, stream)
    outside = positions >= np.uint64(total)
    while outside.any():  # cycle walking: at most 4x the range, so a few steps at most
        positions[outside] = _feistel(positions[outside], bits, seed, stream)
        outside = positions >= np.uint64(total)
    return positions


def _feistel(values: np.ndarray, bits: int, seed: int, stream: int) -> np.ndarray:
    half = np.uint64(bits // 2)
    mask = np.uint64((1 << (bits // 2)) - 1)
    left, right = values >> half, values & mask
    zeros = np.zeros_like(right)
    for round_number in range(_FEISTEL_ROUNDS):
        words = (right & np.uint64(0xFFFFFFFF), right >> np.uint64(32))
        low, high, _, _ = philox4x32(
            (*words, zeros + round_number, zeros + stream), (seed & 0xFFFFFFFF, seed >> 32)
        )
        mixed = (low | (high << np.uint64(32))) & mask
        left, right = right, left ^ mixed
    return (left << half) | right
