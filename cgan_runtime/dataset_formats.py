"""How each format lays a data set out on disk: a shard's files, written by whichever worker draws
it, and the finishing step once every shard is in. Every byte depends on the plan alone (no
times, owners or random names), so that a set is the same bytes whatever wrote it. Large files are
written under a temporary name and renamed; all of them sit in the unfinished set, where a shard
counts only once its digest is logged.

- idx: MNIST's gzip IDX files of each split and SHA256SUMS (shards are raw pieces, joined at the end);
- npz: one file, x/y and x_test/y_test (pieces too);
- folder: torchvision's ImageFolder layout, SPLIT/DIGIT/INDEX.png (SPLIT/ only with a test split);
- parquet: Hugging Face's layout, data/SPLIT-0000K-of-0000N.parquet with Image and ClassLabel
  features, and a dataset card, README.md;
- webdataset: tar shards SPLIT-00000K.tar of INDEX.png and INDEX.cls.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import struct
import tarfile
import zipfile
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import numpy as np

from cgan_runtime.dataset_plan import Plan, Shard
from cgan_runtime.images import save_png

FORMATS = ("idx", "folder", "npz", "parquet", "webdataset")
SHARDED = ("parquet", "webdataset")  # the formats whose files are the shards
IDX_PREFIXES = {"train": "train", "test": "t10k"}  # MNIST's file name prefix of each split
IDX_IMAGES, IDX_LABELS = 0x00000803, 0x00000801  # magic numbers: unsigned bytes, 3-d and 1-d
CHECKSUM_FILE = "SHA256SUMS"
PIECES = ".pieces"  # the raw shards of idx and npz, inside the unfinished set
GZIP_LEVEL = 6  # zlib's default: most of level 9's size at a fraction of its time
PARQUET_ROWS_PER_GROUP = 1_000
CARD = "README.md"


def shard_files(dataset_format: str, plan: Plan, shard: Shard) -> list[str]:
    """A shard's files, relative to the set, in order: the plan names them (so that no manifest has
    to list a million PNGs, and none can name a file outside the set)."""
    if dataset_format in ("idx", "npz"):
        return [_piece_name(shard)]
    if dataset_format in SHARDED:
        return [_shard_file(plan, shard, dataset_format)]
    top, width = split_folder(plan, shard.split), _index_width(plan, shard.split)
    labels = plan.labels(shard.split, shard.start, shard.stop)
    return [
        f"{top}/{label}/{index:0{width}d}.png".lstrip("/")
        for index, label in zip(range(shard.start, shard.stop), labels, strict=True)
    ]


def write_shard(
    folder: Path, dataset_format: str, plan: Plan, shard: Shard, labels: np.ndarray, images: np.ndarray
) -> list[str]:
    """Write one shard's files into folder; their names (shard_files), in order."""
    writer = {
        "idx": _write_piece,
        "npz": _write_piece,
        "folder": _write_pngs,
        "parquet": _write_parquet,
        "webdataset": _write_tar,
    }[dataset_format]
    return writer(folder, plan, shard, labels, images)


def shard_digest(folder: Path, names: list[str]) -> str:
    """One SHA-256 over a shard's files, names and bytes, in order; FileNotFoundError if one is gone."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0")
        _hash_file(digest, folder / name)
        digest.update(b"\0")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    return _hash_file(hashlib.sha256(), path).hexdigest()


def _hash_file(digest, path: Path):
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest


def finish(folder: Path, dataset_format: str, plan: Plan, image_size: int, model_version: str) -> None:
    """The files written once all the shards are in (idx: the joined files; parquet: the card)."""
    if dataset_format == "idx":
        for split in plan.splits:
            _join_idx(folder, plan, split, image_size)
        _write_checksums(folder)
        _remove_pieces(folder, plan)
    elif dataset_format == "parquet":
        _write_atomically(folder / CARD, dataset_card(plan, model_version).encode())


def join_npz(folder: Path, target: Path, plan: Plan, image_size: int) -> None:
    """The file np.savez_compressed(x=..., y=..., [x_test=..., y_test=...]) would write, from the pieces."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=GZIP_LEVEL) as archive:
        for split in plan.splits:
            suffix = "" if split == "train" else f"_{split}"
            with archive.open(f"y{suffix}.npy", "w", force_zip64=True) as member:
                header = {"descr": "|u1", "fortran_order": False, "shape": (plan.split_size(split),)}
                np.lib.format.write_array_header_1_0(member, header)
                for labels in _split_labels(plan, split):
                    member.write(labels)
            with archive.open(f"x{suffix}.npy", "w", force_zip64=True) as member:
                header = {
                    "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
                    "fortran_order": False,
                    "shape": (plan.split_size(split), image_size, image_size),
                }
                np.lib.format.write_array_header_1_0(member, header)
                for piece in _pieces(folder, plan, split):
                    member.write(piece)


def split_folder(plan: Plan, split: str) -> str:
    """Where a split's files go in the folder format: the set's top with one split, else SPLIT/."""
    return split if len(plan.splits) > 1 else ""


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.writing")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _piece_name(shard: Shard) -> str:
    return f"{PIECES}/{shard.key}.u8"


def _write_piece(folder, plan, shard, labels, images) -> list[str]:
    name = _piece_name(shard)
    (folder / PIECES).mkdir(exist_ok=True)
    _write_atomically(folder / name, np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    return [name]


def _pieces(folder: Path, plan: Plan, split: str) -> Iterator[bytes]:
    for shard in plan.shards(split):
        yield (folder / _piece_name(shard)).read_bytes()


def _remove_pieces(folder: Path, plan: Plan) -> None:
    for shard in plan.shards():
        (folder / _piece_name(shard)).unlink()
    (folder / PIECES).rmdir()


def _split_labels(plan: Plan, split: str) -> Iterator[bytes]:
    """A split's labels, shard by shard (a split's labels whole would be 8 bytes an image at work)."""
    for shard in plan.shards(split):
        yield plan.labels(split, shard.start, shard.stop).tobytes()


def _join_idx(folder: Path, plan: Plan, split: str, size: int) -> None:
    """MNIST's two gzip files of one split."""
    prefix, count = IDX_PREFIXES[split], plan.split_size(split)
    labels = chain([struct.pack(">II", IDX_LABELS, count)], _split_labels(plan, split))
    _write_gzip(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    header = struct.pack(">IIII", IDX_IMAGES, count, size, size)
    _write_gzip(folder / f"{prefix}-images-idx3-ubyte.gz", chain([header], _pieces(folder, plan, split)))


def _write_gzip(path: Path, pieces) -> None:
    """The pieces of bytes gzip-compressed (no name or time in the header: the same set, the same bytes)."""
    temporary = path.with_name(f".{path.name}.writing")
    with (
        open(temporary, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=GZIP_LEVEL) as compressed,
    ):
        for piece in pieces:
            compressed.write(piece)
    os.replace(temporary, path)


def _write_checksums(folder: Path) -> None:
    """SHA256SUMS over the raw bytes of every IDX file, as MNIST folders list them."""
    lines = []
    for path in sorted(folder.glob("*.gz")):
        digest = hashlib.sha256()
        with gzip.open(path, "rb") as raw:
            while block := raw.read(1 << 20):
                digest.update(block)
        lines.append(f"{digest.hexdigest()}  {path.name.removesuffix('.gz')}\n")
    _write_atomically(folder / CHECKSUM_FILE, "".join(lines).encode())


def _index_width(plan: Plan, split: str) -> int:
    return len(str(plan.split_size(split) - 1))


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    save_png(image, buffer)
    return buffer.getvalue()


def _write_pngs(folder, plan, shard, labels, images) -> list[str]:
    """SPLIT/DIGIT/INDEX.png, INDEX the image's place in the shuffled split."""
    top = folder / split_folder(plan, shard.split)
    for digit in range(plan.num_classes):
        (top / str(digit)).mkdir(parents=True, exist_ok=True)
    names = shard_files("folder", plan, shard)
    for name, image in zip(names, images, strict=True):
        # Straight to its name: a file a crash cuts short is in a shard never recorded, drawn again.
        (folder / name).write_bytes(_png(image))
    return names


def _shard_file(plan: Plan, shard: Shard, dataset_format: str) -> str:
    if dataset_format == "parquet":  # Hugging Face's names: data/train-00000-of-00004.parquet
        digits = max(5, len(str(shard.count)))
        return f"data/{shard.split}-{shard.number:0{digits}d}-of-{shard.count:0{digits}d}.parquet"
    return f"{shard.split}-{shard.number:06d}.tar"


def hugging_face_features(plan: Plan) -> dict:
    names = [str(digit) for digit in range(plan.num_classes)]
    return {"image": {"_type": "Image"}, "label": {"names": names, "_type": "ClassLabel"}}


def _write_parquet(folder, plan, shard, labels, images) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    pictures = pa.array([{"bytes": _png(image), "path": None} for image in images], type=image_type)
    table = pa.table({"image": pictures, "label": pa.array(labels.astype(np.int64))})
    info = {"info": {"features": hugging_face_features(plan)}}
    table = table.replace_schema_metadata({"huggingface": json.dumps(info)})
    name = _shard_file(plan, shard, "parquet")
    path = folder / name
    path.parent.mkdir(exist_ok=True)
    temporary = path.with_name(f".{path.name}.writing")
    pq.write_table(table, temporary, row_group_size=PARQUET_ROWS_PER_GROUP)
    os.replace(temporary, path)
    return [name]


def _write_tar(folder, plan, shard, labels, images) -> list[str]:
    """A WebDataset shard: INDEX.png and INDEX.cls (the label as text) for each image, owners and
    times fixed so that the bytes depend on the images alone."""
    name = _shard_file(plan, shard, "webdataset")
    path = folder / name
    temporary = path.with_name(f".{path.name}.writing")
    width = _index_width(plan, shard.split)
    with tarfile.open(temporary, "w", format=tarfile.USTAR_FORMAT) as archive:
        for index, label, image in zip(range(shard.start, shard.stop), labels, images, strict=True):
            for suffix, data in (("png", _png(image)), ("cls", str(int(label)).encode())):
                member = tarfile.TarInfo(f"{index:0{width}d}.{suffix}")
                member.size, member.mtime, member.mode = len(data), 0, 0o644
                archive.addfile(member, io.BytesIO(data))
    os.replace(temporary, path)
    return [name]


def dataset_card(plan: Plan, model_version: str) -> str:
    """README.md as the Hugging Face Hub reads it: the features, the splits and their files."""
    class_names = "\n".join(f"          '{digit}': '{digit}'" for digit in range(plan.num_classes))
    splits = "\n".join(
        f"  - name: {split}\n    num_examples: {plan.split_size(split)}" for split in plan.splits
    )
    files = "\n".join(f"  - split: {split}\n    path: data/{split}-*" for split in plan.splits)
    counts = ", ".join(f"{split}: {plan.per_digit[split]:,} of every digit" for split in plan.splits)
    return f"""---
dataset_info:
  features:
  - name: image
    dtype: image
  - name: label
    dtype:
      class_label:
        names:
{class_names}
  splits:
{splits}
configs:
- config_name: default
  data_files:
{files}
task_categories:
- image-classification
size_categories:
- {_size_category(plan.total)}
tags:
- synthetic
- mnist
---

# Generated handwritten digits

28x28 grey handwritten digits drawn by cgan's generator (`{model_version}`), labelled with the
digit they were drawn as, balanced and shuffled ({counts}). Written by
`cgan-dataset --format parquet --seed {plan.seed}`: the same seed and model give the same files.

```python
from datasets import load_dataset
digits = load_dataset("parquet", data_dir="PATH/TO/THIS/FOLDER")
```
"""


def _size_category(total: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    bounds += [(10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    return next((label for bound, label in bounds if total < bound), "n>1B")
