"""Who draws a data set's shards: this process, local worker processes (--workers N), or Ray
(dataset_ray.py). Each engine takes the same Job and shards and yields each shard's ShardDone as it
finishes, in any order; what a shard holds depends on the plan alone, so the engines agree byte for
byte. A worker that dies is replaced and its shard drawn again, from nothing: its files were never
recorded."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cgan_runtime.dataset_formats import file_sha256, shard_digest, write_shard
from cgan_runtime.dataset_plan import Plan, Shard
from cgan_runtime.generator import CHUNK_SIZE, DigitGenerator, ModelError
from cgan_runtime.images import to_uint8

ATTEMPTS = 3  # per shard: a worker that dies this often on one shard is not bad luck
# Fault injection for the tests: "crash-once:PATH" makes the first worker to claim PATH (created
# exclusively) die halfway through its shard, as a killed or out-of-memory worker would;
# "full-disk-after:N" makes every shard after the first N of a split fail as a full disk does.
FAILPOINT = "CGAN_DATASET_FAILPOINT"


class WorkerError(RuntimeError):
    """A shard could not be drawn: its workers died ATTEMPTS times."""


@dataclass(frozen=True)
class Job:
    """What every worker needs: where the unfinished set is, in which format, of which plan, and
    the model (its path here; its bytes travel to Ray's workers)."""

    folder: str
    dataset_format: str
    plan: Plan
    model_path: str
    model_sha256: str
    device: str = "cpu"


@dataclass(frozen=True)
class ShardDone:
    key: str
    digest: str  # of its files (dataset_formats.shard_digest)
    images: int


def draw_shard(generator: DigitGenerator, job: Job, shard: Shard) -> ShardDone:
    """Draw one shard and write its files into the unfinished set."""
    info = generator.info
    labels = job.plan.labels(shard.split, shard.start, shard.stop)
    images = np.empty((shard.size, info.image_size, info.image_size), dtype=np.uint8)
    for offset in range(0, shard.size, CHUNK_SIZE):
        stop = min(shard.size, offset + CHUNK_SIZE)
        noise = job.plan.noise(shard.split, shard.start + offset, shard.start + stop, info.latent_dim)
        output = generator.generate(noise, labels[offset:stop].astype(np.int64))
        images[offset:stop] = to_uint8(output, info.output_range)
        _maybe_crash(stop, shard)
    folder = Path(job.folder)
    names = write_shard(folder, job.dataset_format, job.plan, shard, labels, images)
    return ShardDone(shard.key, shard_digest(folder, names), shard.size)


def _maybe_crash(drawn: int, shard: Shard) -> None:
    rule = os.environ.get(FAILPOINT, "")
    if rule.startswith("full-disk-after:") and shard.number >= int(rule.removeprefix("full-disk-after:")):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if rule.startswith("crash-once:") and 2 * drawn >= shard.size:
        try:
            os.close(os.open(rule.removeprefix("crash-once:"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(70)


def load_worker_generator(model_path: str, expected_sha256: str, device: str, threads: int) -> DigitGenerator:
    """The job's model in a worker, refused if its bytes are not the ones the job was planned with."""
    found = file_sha256(Path(model_path))
    if found != expected_sha256:
        raise ModelError(f"{model_path}: not the model this set is drawn with (its SHA-256 differs)")
    return DigitGenerator(model_path, device=device, threads=threads)


class InProcess:
    """This process, one shard after another."""

    name = "this process"

    def __init__(self, generator: DigitGenerator):
        self.generator = generator

    def run(self, job: Job, shards: Iterable[Shard]) -> Iterator[ShardDone]:
        for shard in shards:
            yield draw_shard(self.generator, job, shard)


_worker_generator: DigitGenerator | None = None


def _start_worker(job: Job, threads: int) -> None:
    global _worker_generator
    # The parent handles stops and ends the workers; a worker stopping by itself would race it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _worker_generator = load_worker_generator(job.model_path, job.model_sha256, job.device, threads)


def _draw_in_worker(job: Job, shard: Shard) -> ShardDone:
    return draw_shard(_worker_generator, job, shard)


class LocalProcesses:
    """N worker processes of this machine, each with its own onnxruntime session and an equal share
    of the cores, taking shards as they free up."""

    def __init__(self, workers: int):
        self.workers = workers
        self.name = f"{workers} local processes"

    def run(self, job: Job, shards: Iterable[Shard]) -> Iterator[ShardDone]:
        waiting = list(shards)
        attempts = dict.fromkeys((shard.key for shard in waiting), 0)
        while waiting:
            pool = self._pool(job)
            try:
                running = {pool.submit(_draw_in_worker, job, shard): shard for shard in waiting}
                while running:
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        shard = running.pop(future)
                        yield future.result()  # a worker's own error (a full disk) ends the run
                        waiting.remove(shard)
            except BrokenProcessPool:
                # A worker died (killed, out of memory): the pool is gone with it; the shards not yet
                # done go to a new one, each at most ATTEMPTS times.
                for shard in waiting:
                    attempts[shard.key] += 1
                    if attempts[shard.key] >= ATTEMPTS:
                        raise WorkerError(
                            f"shard {shard.key}: its worker process died {ATTEMPTS} times"
                        ) from None
            finally:
                _stop_pool(pool)

    def _pool(self, job: Job) -> ProcessPoolExecutor:
        import multiprocessing

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        threads = max(1, cpus // self.workers)
        # forkserver: a clean process per worker (no copy of this one's onnxruntime threads or locks).
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(
            self.workers, mp_context=context, initializer=_start_worker, initargs=(job, threads)
        )


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the workers now: a shard they were drawing was not recorded, and is drawn again later."""
    # The executor offers no other way to end its workers, or to wait for its manager thread.
    processes = list((pool._processes or {}).values())
    manager = pool._executor_manager_thread
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=10)
    # A manager thread still closing its wake-up pipe when Python exits races the exit hook that
    # writes to that pipe (Python 3.11), and the user saw "Bad file descriptor" with a traceback.
    if manager is not None:
        manager.join(timeout=10)
