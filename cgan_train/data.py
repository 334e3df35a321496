"""MNIST from a folder of IDX files, verified by checksum and held in memory as uint8 tensors."""

from __future__ import annotations

import gzip
import hashlib
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

# SHA-256 of the raw (decompressed) IDX files. The raw bytes are what every MNIST
# mirror agrees on; the gzip wrappers differ from mirror to mirror.
MNIST_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
# A folder holding a subset of MNIST (such as the test fixture) lists its own
# checksums in this file, in `sha256sum` format over the raw IDX bytes.
SUBSET_CHECKSUM_FILE = "SHA256SUMS"

SPLIT_PREFIX = {"train": "train", "test": "t10k"}
IDX_UBYTE = 0x08


class DataError(Exception):
    """The data folder is missing a file, or a file is corrupt."""


@dataclass(frozen=True)
class Digits:
    """One split of MNIST: images as uint8 [N, 28, 28], labels as int64 [N]."""

    images: torch.Tensor
    labels: torch.Tensor
    sha256: str  # one digest for the images and labels files together

    def __len__(self) -> int:
        return len(self.labels)


def load_mnist(data_dir: Path, split: str = "train") -> Digits:
    """Read and verify one split (train or test) from data_dir."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"MNIST folder not found: {data_dir}")
    expected = _expected_checksums(data_dir)
    prefix = SPLIT_PREFIX[split]
    images_raw = _read_verified(data_dir, f"{prefix}-images-idx3-ubyte", expected)
    labels_raw = _read_verified(data_dir, f"{prefix}-labels-idx1-ubyte", expected)
    images = _parse_idx(images_raw, f"{prefix}-images-idx3-ubyte", dims=3)
    labels = _parse_idx(labels_raw, f"{prefix}-labels-idx1-ubyte", dims=1)
    if len(images) != len(labels):
        raise DataError(f"{data_dir}: {len(images)} images but {len(labels)} labels")
    digest = _combined_digest(hashlib.sha256(images_raw).hexdigest(), hashlib.sha256(labels_raw).hexdigest())
    return Digits(images=images, labels=labels.long(), sha256=digest)


def is_official_mnist(digest: str, split: str = "train") -> bool:
    """Whether a Digits.sha256 is that of the full, official MNIST split."""
    prefix = SPLIT_PREFIX[split]
    official = _combined_digest(
        MNIST_SHA256[f"{prefix}-images-idx3-ubyte"], MNIST_SHA256[f"{prefix}-labels-idx1-ubyte"]
    )
    return digest == official


def _combined_digest(images_sha256: str, labels_sha256: str) -> str:
    return hashlib.sha256((images_sha256 + labels_sha256).encode()).hexdigest()


def download_mnist(root: Path) -> Path:
    """Fetch MNIST with torchvision (for users who are online); return the folder of raw files."""
    from torchvision.datasets import MNIST

    try:
        for train in (True, False):
            MNIST(root=str(root), train=train, download=True)
    except (OSError, RuntimeError) as error:  # torchvision reports failed mirrors as RuntimeError
        reason = " ".join(str(error).split())[-160:]  # torchvision's message spans lines
        raise DataError(
            f"could not download MNIST into {root}: ...{reason}; pass --data-dir FOLDER of IDX files"
        ) from error
    return Path(root) / "MNIST" / "raw"


def _expected_checksums(data_dir: Path) -> dict[str, str]:
    listing = data_dir / SUBSET_CHECKSUM_FILE
    if not listing.is_file():
        return MNIST_SHA256
    sums = {}
    for line in listing.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.lstrip("*").removesuffix(".gz")] = digest
    return sums


def _read_verified(data_dir: Path, name: str, expected: dict[str, str]) -> bytes:
    raw_path, gz_path = data_dir / name, data_dir / f"{name}.gz"
    if raw_path.is_file():
        path, raw = raw_path, raw_path.read_bytes()
    elif gz_path.is_file():
        path = gz_path
        try:
            raw = gzip.decompress(gz_path.read_bytes())
        except (OSError, EOFError) as error:
            raise DataError(f"{gz_path}: not a readable gzip file ({error}); download it again") from error
    else:
        raise DataError(f"missing MNIST file: {raw_path} (or {gz_path.name})")
    want = expected.get(name)
    if want is None:
        raise DataError(f"{data_dir / SUBSET_CHECKSUM_FILE} lists no checksum for {name}")
    got = hashlib.sha256(raw).hexdigest()
    if got != want:
        raise DataError(
            f"{path}: corrupt, SHA-256 of the raw bytes is {got}, expected {want}; download it again"
        )
    return raw


def _parse_idx(raw: bytes, name: str, dims: int) -> torch.Tensor:
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != IDX_UBYTE or ndim != dims:
        raise DataError(f"{name}: not an IDX file of {dims}-d unsigned bytes")
    shape = struct.unpack(f">{dims}I", raw[4 : 4 + 4 * dims])
    body = bytearray(raw[4 + 4 * dims :])
    if len(body) != math.prod(shape):
        raise DataError(f"{name}: truncated, header says {shape} but {len(body)} bytes follow")
    return torch.frombuffer(body, dtype=torch.uint8).reshape(shape)
