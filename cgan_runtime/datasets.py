"""Labelled data sets of generated digits: balanced, shuffled, deterministic by seed, streamed in
chunks (memory does not grow with the set), and published whole or not at all.

Formats: MNIST's own IDX files (gzip, standard names, with SHA256SUMS over the raw bytes, as
`cgan-train --data-dir` reads them), a folder per digit of PNG files (torchvision's ImageFolder
layout), or one npz file (x uint8 [N, size, size], y uint8 [N]).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zipfile
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from cgan_runtime.files import atomic_folder, atomic_path
from cgan_runtime.generator import CHUNK_SIZE, DigitGenerator
from cgan_runtime.images import to_uint8

FORMATS = ("idx", "folder", "npz")
SPLITS = {"train": "train", "test": "t10k"}  # MNIST's file name prefix of each split
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # magic numbers: unsigned bytes, 3-d and 1-d
CHECKSUM_FILE = "SHA256SUMS"
# A folder set carries this record of how it was made; --force replaces only a folder that has one,
# so that a mistyped --out never deletes someone's folder.
MANIFEST = "cgan-dataset.json"
GZIP_LEVEL = 6  # zlib's default: most of level 9's size at a fraction of its time


def generate_set(
    generator: DigitGenerator, labels: np.ndarray, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """The images of labels, in order, as uint8 chunks of at most CHUNK_SIZE."""
    info = generator.info
    for start in range(0, len(labels), CHUNK_SIZE):
        chunk_labels = labels[start : start + CHUNK_SIZE]
        noise = rng.standard_normal((len(chunk_labels), info.latent_dim), dtype=np.float32)
        yield to_uint8(generator.generate(noise, chunk_labels.astype(np.int64)), info.output_range)


def write_dataset(
    generator: DigitGenerator,
    out: Path,
    dataset_format: str,
    per_digit: int,
    seed: int,
    test_per_digit: int = 0,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write the set (a training split, and a test split when test_per_digit); return its number of
    images. progress(n) hears of every n images written.

    FileExistsError when out exists by the end (unless force, which replaces an npz file or a
    folder this function wrote)."""
    if dataset_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {dataset_format!r}")
    for name, value, least in (
        ("per_digit", per_digit, 1),
        ("test_per_digit", test_per_digit, 0),
        ("seed", seed, 0),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
    counts = {"train": int(per_digit), **({"test": int(test_per_digit)} if test_per_digit else {})}
    splits = _splits(generator, counts, int(seed), progress)
    size, num_classes = generator.info.image_size, generator.info.num_classes
    if dataset_format == "npz":
        with atomic_path(out, replace=force) as temporary:
            _write_npz(temporary, splits, size)
        return num_classes * sum(counts.values())
    manifest = {
        "format": dataset_format,
        "per_digit": counts,
        "seed": int(seed),
        "model_version": generator.info.model_version,
        "image_size": size,
    }
    with atomic_folder(out, replace_if=is_dataset_folder if force else None) as temporary:
        for split, labels, chunks in splits:
            if dataset_format == "idx":
                _write_idx(temporary, SPLITS[split], labels, chunks, size)
            else:
                place = temporary / split if len(counts) > 1 else temporary
                place.mkdir(exist_ok=True)
                _write_image_folder(place, labels, chunks, num_classes)
        if dataset_format == "idx":
            _write_checksums(temporary)
        (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return num_classes * sum(counts.values())


def _splits(
    generator: DigitGenerator, counts: dict[str, int], seed: int, progress: Callable[[int], None] | None
) -> Iterator[tuple[str, np.ndarray, Iterator[np.ndarray]]]:
    """(split, labels, image chunks) of each split in turn, from one random stream: consume each
    split's chunks before asking for the next split. The training split does not depend on
    whether a test split follows."""
    rng = np.random.default_rng(seed)
    for split, per_digit in counts.items():
        labels = np.repeat(np.arange(generator.info.num_classes, dtype=np.uint8), per_digit)
        labels = labels[rng.permutation(len(labels))]
        yield split, labels, _reporting(generate_set(generator, labels, rng), progress)


def is_dataset_folder(path: Path) -> bool:
    """A folder this module wrote (it holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def _reporting(chunks: Iterator[np.ndarray], progress: Callable[[int], None] | None) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield chunk
        if progress is not None:
            progress(len(chunk))


def _write_idx(
    folder: Path, prefix: str, labels: np.ndarray, chunks: Iterator[np.ndarray], size: int
) -> None:
    """MNIST's two gzip files of one split."""
    count = len(labels)
    _write_gzip(
        folder / f"{prefix}-labels-idx1-ubyte.gz", [struct.pack(">II", IDX_LABELS, count), labels.tobytes()]
    )
    header = struct.pack(">IIII", IDX_IMAGES, count, size, size)
    _write_gzip(
        folder / f"{prefix}-images-idx3-ubyte.gz", chain([header], (chunk.tobytes() for chunk in chunks))
    )


def _write_checksums(folder: Path) -> None:
    """SHA256SUMS over the raw bytes of every IDX file, as MNIST folders list them."""
    lines = []
    for path in sorted(folder.glob("*.gz")):
        digest = hashlib.sha256()
        with gzip.open(path, "rb") as raw:
            while block := raw.read(1 << 20):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.name.removesuffix('.gz')}\n")
    (folder / CHECKSUM_FILE).write_text("".join(lines))


def _write_gzip(path: Path, pieces) -> None:
    """Write the pieces of bytes gzip-compressed (no name or time in the header, so that the same
    set gives the same bytes)."""
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as compressed,
    ):
        for piece in pieces:
            compressed.write(piece)


def _write_image_folder(
    folder: Path, labels: np.ndarray, chunks: Iterator[np.ndarray], num_classes: int
) -> None:
    """FOLDER/DIGIT/INDEX.png, INDEX the image's place in the shuffled set."""
    from PIL import Image

    width = len(str(len(labels) - 1))
    for digit in range(num_classes):
        (folder / str(digit)).mkdir()
    index = 0
    for chunk in chunks:
        for image in chunk:
            Image.fromarray(image).save(folder / str(labels[index]) / f"{index:0{width}d}.png", format="PNG")
            index += 1


def _write_npz(path: Path, splits, size: int) -> None:
    """The file np.savez_compressed(x=..., y=..., [x_test=..., y_test=...]) would write, the images
    streamed into it."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=GZIP_LEVEL) as archive:
        for split, labels, chunks in splits:
            suffix = "" if split == "train" else f"_{split}"
            with archive.open(f"y{suffix}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, labels, allow_pickle=False)
            with archive.open(f"x{suffix}.npy", "w", force_zip64=True) as member:
                header = {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                    "fortran_order": False,
                    "shape": (len(labels), size, size),
                }
                np.lib.format.write_array_header_1_0(member, header)
                for chunk in chunks:
                    member.write(np.ascontiguousarray(chunk).tobytes())
