"""Labelled data sets of generated digits, balanced, shuffled and the same bytes for the same seed and
model whatever draws them (dataset_plan.py), in MNIST's IDX files, an ImageFolder tree, npz,
Hugging Face's Parquet layout or WebDataset shards (dataset_formats.py), drawn by this process,
local processes or Ray (dataset_engines.py, dataset_ray.py).

A set is written shard by shard into a hidden unfinished folder beside its name, .NAME.cgan-dataset-
unfinished, whose manifest records each finished shard's digest. Once every shard is in, the set is
finished (idx and npz files joined, the card written) and renamed into place: it appears whole or not
at all. A stopped or failed run leaves the unfinished folder; the next run on the same name resumes
it (resume=True: its shards whose files still match their digests are kept) or starts over.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cgan_runtime.dataset_engines import InProcess, Job, ShardDone, file_sha256
from cgan_runtime.dataset_formats import FORMATS, finish, join_npz, shard_digest
from cgan_runtime.dataset_plan import DEFAULT_SHARD_SIZE, Plan
from cgan_runtime.files import atomic_path, lock_folder, publish_folder, release
from cgan_runtime.generator import DigitGenerator

MANIFEST = "cgan-dataset.json"  # in every folder set: --force replaces only a folder that has one
UNFINISHED = ".{name}.cgan-dataset-unfinished"


class DatasetBusy(RuntimeError):
    """Another run is writing the same set."""


class ResumeMismatch(ValueError):
    """--resume of an unfinished set made with other settings."""


def is_dataset_folder(path: Path) -> bool:
    """A folder this module wrote (it holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def unfinished_folder(out: Path) -> Path:
    out = Path(out)
    return out.with_name(UNFINISHED.format(name=out.name))


def write_dataset(
    generator: DigitGenerator,
    out: Path,
    dataset_format: str,
    per_digit: int,
    seed: int,
    test_per_digit: int = 0,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    engine=None,
    resume: bool = False,
    on_shard: Callable[[int, int], None] | None = None,
) -> int:
    """Write the set (a training split, and a test split when test_per_digit); return its number of
    images. progress(n) hears of every n images drawn, on_shard(done, total) of every shard; engine
    draws the shards (default: this process).

    FileExistsError when out exists by the end (unless force, which replaces an npz file or a
    folder this function wrote)."""
    if dataset_format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {dataset_format!r}")
    for name, value, least in (
        ("per_digit", per_digit, 1),
        ("test_per_digit", test_per_digit, 0),
        ("seed", seed, 0),
        ("shard_size", shard_size, 1),
    ):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an integer of at least {least}, got {value!r}")
    out = Path(out)
    counts = {"train": int(per_digit), **({"test": int(test_per_digit)} if test_per_digit else {})}
    plan = Plan(counts, int(seed), generator.info.num_classes, int(shard_size))
    record = {
        "format": dataset_format,
        **plan.record(),
        "model_version": generator.info.model_version,
        "model_sha256": file_sha256(generator.model_path),
        "image_size": generator.info.image_size,
    }
    engine = engine or InProcess(generator)
    with _Unfinished(out, record, resume) as unfinished:
        model = str(generator.model_path.absolute())
        # Absolute: workers (Ray's, on other nodes) do not share this process's working folder.
        job = Job(str(unfinished.folder.absolute()), dataset_format, plan, model, record["model_sha256"])
        todo = [shard for shard in plan.shards() if shard.key not in unfinished.done]
        if on_shard is not None:
            on_shard(len(unfinished.done), len(plan.shards()))
        if progress is not None:
            progress(sum(shard.size for shard in plan.shards() if shard.key in unfinished.done))
        for result in engine.run(job, todo):
            unfinished.record(result)
            if progress is not None:
                progress(result.images)
            if on_shard is not None:
                on_shard(len(unfinished.done), len(plan.shards()))
        unfinished.publish(out, plan, generator, force)
    return plan.total


def _inside(names: list[str]) -> bool:
    """A manifest's file names stay inside the set (a crafted one could name any file)."""
    return all(
        isinstance(name, str) and not Path(name).is_absolute() and ".." not in Path(name).parts
        for name in names
    )


def _read_manifest(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ResumeMismatch(f"the unfinished set's manifest is unreadable ({error}); start over") from None
    if not isinstance(found, dict):
        raise ResumeMismatch("the unfinished set's manifest is not a record of this command's; start over")
    return found


class _Unfinished:
    """The hidden folder a set is written into, held under a lock while a run works in it, with the
    manifest of its finished shards."""

    def __init__(self, out: Path, record: dict, resume: bool):
        self.out, self.record_wanted, self.resume = out, record, resume
        self.folder = unfinished_folder(out)
        self.done: dict[str, dict] = {}
        self.lock = None
        self.published = False

    def __enter__(self) -> _Unfinished:
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise FileExistsError(f"{self.folder} is in the way of the unfinished set; remove it")
        self.folder.mkdir(exist_ok=True)
        try:
            self.lock = lock_folder(self.folder, wait=False)
        except BlockingIOError:
            raise DatasetBusy(f"another cgan-dataset is writing {self.out} now") from None
        try:
            manifest = self.folder / MANIFEST
            if manifest.is_file() and self.resume:
                self._take_finished_shards(_read_manifest(manifest))
            elif any(self.folder.iterdir()):  # a stopped run's shards, not wanted: start over
                self._empty()
            self._write_manifest()
        except BaseException:
            release(self.lock)  # __exit__ does not run when __enter__ fails
            raise
        return self

    def _take_finished_shards(self, found: dict) -> None:
        for key, wanted in self.record_wanted.items():
            if found.get(key) != wanted:
                raise ResumeMismatch(
                    f"the unfinished set was made with {key} {found.get(key)!r}, not {wanted!r}; "
                    "run without --resume to start over"
                )
        shards = found.get("shards")
        for key, entry in (shards if isinstance(shards, dict) else {}).items():
            try:
                if _inside(entry["files"]) and shard_digest(self.folder, entry["files"]) == entry["digest"]:
                    self.done[key] = entry
            except (OSError, KeyError, TypeError, AttributeError):
                pass  # a file gone or a crafted entry: the shard is drawn again

    def _empty(self) -> None:
        for entry in self.folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _write_manifest(self, complete: bool = False) -> None:
        manifest = {**self.record_wanted, "complete": complete, "shards": dict(sorted(self.done.items()))}
        temporary = self.folder / f".{MANIFEST}.writing"
        temporary.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(temporary, self.folder / MANIFEST)

    def record(self, result: ShardDone) -> None:
        self.done[result.key] = {"files": result.files, "digest": result.digest}
        self._write_manifest()

    def publish(self, out: Path, plan: Plan, generator: DigitGenerator, force: bool) -> None:
        info = generator.info
        dataset_format = self.record_wanted["format"]
        if dataset_format == "npz":
            with atomic_path(out, replace=force) as temporary:
                join_npz(self.folder, temporary, plan, info.image_size)
            shutil.rmtree(self.folder)
        else:
            finish(self.folder, dataset_format, plan, info.image_size, info.model_version)
            self._write_manifest(complete=True)
            publish_folder(self.folder, out, is_dataset_folder if force else None)
        self.published = True

    def __exit__(self, kind, error, traceback) -> None:
        release(self.lock)
        if not self.published and not self.done and self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)  # nothing worth resuming: leave nothing
