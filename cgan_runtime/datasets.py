"""Labelled data sets of generated digits, balanced, shuffled and the same bytes for the same seed and
model whatever draws them (dataset_plan.py), in MNIST's IDX files, an ImageFolder tree, npz,
Hugging Face's Parquet layout or WebDataset shards (dataset_formats.py), drawn by this process,
local processes or Ray (dataset_engines.py, dataset_ray.py).

A set is written shard by shard into a hidden unfinished folder beside its name, .NAME.cgan-dataset-
unfinished, whose log records each finished shard's digest. Once every shard is in, the set is
finished (idx and npz files joined, the card written) and renamed into place: it appears whole or not
at all. A stopped or failed run leaves the unfinished folder; the next run on the same name resumes
it (resume=True: its shards whose files still match their digests are kept) or starts over.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cgan_runtime.dataset_engines import InProcess, Job, ShardDone
from cgan_runtime.dataset_formats import FORMATS, file_sha256, finish, join_npz, shard_digest, shard_files
from cgan_runtime.dataset_plan import DEFAULT_SHARD_SIZE, Plan
from cgan_runtime.files import atomic_path, lock_folder, name_start, publish_folder, release
from cgan_runtime.generator import DigitGenerator
from cgan_runtime.noise import MAX_SEED
from cgan_runtime.streams import first_line

MANIFEST = "cgan-dataset.json"  # in every folder set: --force replaces only a folder that has one
SHARD_LOG = "shards.log"  # in an unfinished set: a line for each finished shard
UNFINISHED = ".{name}.cgan-dataset-unfinished"
MAX_NAME_BYTES = 255  # the usual file systems' limit on one name


class DatasetBusy(RuntimeError):
    """Another run is writing the same set."""


class ResumeMismatch(ValueError):
    """--resume of an unfinished set made with other settings."""


def is_dataset_folder(path: Path) -> bool:
    """A folder this module wrote (it holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def unfinished_folder(out: Path) -> Path:
    out = Path(out)
    name = out.name
    if len(os.fsencode(UNFINISHED.format(name=name))) > MAX_NAME_BYTES:
        # A long name's start and a digest of the whole: a folder name must fit the limit, and two
        # long names that start alike must not share one.
        start = name_start(name, MAX_NAME_BYTES // 2)
        name = f"{start}~{hashlib.sha256(os.fsencode(name)).hexdigest()[:16]}"
    return out.with_name(UNFINISHED.format(name=name))


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
    if seed > MAX_SEED:
        raise ValueError(f"seed must be at most {MAX_SEED}, got {seed}")
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
    with _Unfinished(out, record, resume, plan) as unfinished:
        # Absolute paths: workers (Ray's, on other nodes) do not share this process's working folder.
        folder, model = str(unfinished.folder.absolute()), str(generator.model_path.absolute())
        device = generator.info.device.requested if generator.info.device else "cpu"
        job = Job(folder, dataset_format, plan, model, record["model_sha256"], device)
        shards = plan.shards()  # once: a set of 10^9 images has 10^5 of them
        todo = [shard for shard in shards if shard.key not in unfinished.done]
        if on_shard is not None:
            on_shard(len(unfinished.done), len(shards))
        if progress is not None:
            progress(plan.total - sum(shard.size for shard in todo))
        for result in engine.run(job, todo):
            unfinished.record(result)
            if progress is not None:
                progress(result.images)
            if on_shard is not None:
                on_shard(len(unfinished.done), len(shards))
        unfinished.publish(out, generator, force)
    return plan.total


def _read_manifest(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise ResumeMismatch(
            f"the unfinished set's manifest is unreadable ({first_line(error)}); start over"
        ) from None
    if not isinstance(found, dict):
        raise ResumeMismatch("the unfinished set's manifest is not a record of this command's; start over")
    return found


def logged_shards(folder: Path) -> dict[str, str]:
    """The shards an unfinished set's log says are finished, and their digests (unchecked); a line
    cut short by a crash, or not of this command's making, is passed over."""
    found = {}
    log = folder / SHARD_LOG
    try:
        if not stat.S_ISREG(log.lstat().st_mode):  # a link, or a FIFO that would hang the read
            return found
        lines = log.read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        try:
            entry = json.loads(line)
            key, digest = entry["shard"], entry["digest"]
        except (ValueError, KeyError, TypeError, RecursionError):
            continue
        if isinstance(key, str) and isinstance(digest, str):
            found[key] = digest
    return found


class _Unfinished:
    """The hidden folder a set is written into, held under a lock while a run works in it: the
    manifest of its settings, written once, and a log with a line for every finished shard (appended,
    so that a run of a million shards does not rewrite a growing file a million times)."""

    def __init__(self, out: Path, record: dict, resume: bool, plan: Plan):
        self.out, self.record_wanted, self.resume, self.plan = out, record, resume, plan
        self.format = record["format"]
        self.folder = unfinished_folder(out)
        self.done: dict[str, str] = {}  # shard key -> digest
        self.lock = None
        self.log = None
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
                if not _plain_tree(self.folder):
                    raise ResumeMismatch(
                        f"{self.folder} holds a link or a special file, which this command never "
                        "writes; run without --resume to start over"
                    )
                self._take_finished_shards(_read_manifest(manifest))
            elif any(self.folder.iterdir()):  # a stopped run's shards, not wanted: start over
                self._empty()
            self._write_manifest({**self.record_wanted, "complete": False})
            self._start_log()
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
        logged = logged_shards(self.folder)
        for shard in self.plan.shards():
            if shard.key not in logged:
                continue
            try:  # a file changed, cut short or gone: the shard is drawn again
                if shard_digest(self.folder, shard_files(self.format, self.plan, shard)) == logged[shard.key]:
                    self.done[shard.key] = logged[shard.key]
            except OSError:
                pass

    def _empty(self) -> None:
        for entry in self.folder.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def _write_manifest(self, manifest: dict) -> None:
        temporary = self.folder / f".{MANIFEST}.writing"
        temporary.write_text(json.dumps(manifest, indent=1) + "\n")
        os.replace(temporary, self.folder / MANIFEST)

    def _start_log(self) -> None:
        """The log anew, holding the shards kept (a resumed set's bad lines dropped)."""
        temporary = self.folder / f".{SHARD_LOG}.writing"
        temporary.write_text("".join(_log_line(key, digest) for key, digest in sorted(self.done.items())))
        os.replace(temporary, self.folder / SHARD_LOG)
        self.log = open(self.folder / SHARD_LOG, "a")  # noqa: SIM115 (closed in __exit__)

    def record(self, result: ShardDone) -> None:
        self.log.write(_log_line(result.key, result.digest))
        self.log.flush()
        os.fsync(self.log.fileno())  # on disk before the next shard counts on it
        self.done[result.key] = result.digest

    def publish(self, out: Path, generator: DigitGenerator, force: bool) -> None:
        info, plan = generator.info, self.plan
        if self.format == "npz":
            with atomic_path(out, replace=force) as temporary:
                join_npz(self.folder, temporary, plan, info.image_size)
            shutil.rmtree(self.folder)
        else:
            finish(self.folder, self.format, plan, info.image_size, info.model_version)
            shards = {shard.key: self.done[shard.key] for shard in plan.shards()}
            self._write_manifest({**self.record_wanted, "complete": True, "shards": shards})
            self.log.close()
            (self.folder / SHARD_LOG).unlink()
            publish_folder(self.folder, out, is_dataset_folder if force else None)
        self.published = True

    def __exit__(self, kind, error, traceback) -> None:
        if self.log is not None:
            self.log.close()
        release(self.lock)
        # The log on disk, not self.done: a stop between a line's write and self.done's update
        # must not remove a shard the log (and the note on stderr) already calls finished.
        if not self.published and not self.done and self.folder.is_dir() and not logged_shards(self.folder):
            shutil.rmtree(self.folder, ignore_errors=True)  # nothing worth resuming: leave nothing


def _plain_tree(folder: Path) -> bool:
    """Regular files and folders alone under folder: a resume reads and writes in it, and a link
    planted there would lead both elsewhere."""
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            found = os.lstat(os.path.join(root, name))
            if stat.S_ISDIR(found.st_mode):
                continue
            if not stat.S_ISREG(found.st_mode) or found.st_nlink > 1:  # a hard link shares its data
                return False
    return True


def _log_line(key: str, digest: str) -> str:
    return json.dumps({"shard": key, "digest": digest}) + "\n"
