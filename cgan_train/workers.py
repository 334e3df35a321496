"""The evaluation's pieces of work (judging the samples, training a CAS classifier), each on one
thread, run by a pool of worker processes or one after the other in this process.

One thread a piece: on a shared 2-core machine a second torch thread that finds no free core makes
every step wait for it (an MLP's step took 20x as long, a CNN's 2-3x, while another job held a
core); two single-threaded processes degrade gracefully instead, and use both cores when idle. A
piece's result does not depend on which process ran it, nor on how many there are.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cgan_train.data import Digits, load_mnist

_DATA: dict[str, Digits] = {}  # this process's MNIST: "train" and "test"


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def mnist(split: str) -> Digits:
    return _DATA[split]


def _initialise(data_dir: str, parent: int | None = None) -> None:
    """A worker's start (or this process's, parent None): one thread, the data loaded once."""
    if parent is not None:
        _die_with(parent)
    torch.set_num_threads(1)
    for split in ("train", "test"):
        _DATA[split] = load_mnist(Path(data_dir), split)


def _die_with(parent: int) -> None:
    """Ask Linux to stop this worker when the evaluation that started it dies (killed, or stopped
    by a signal it does not handle): a worker left behind would train for minutes for nobody."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own clean-up must do
        return
    if os.getppid() != parent:  # it died before the request was made
        os._exit(1)


@dataclass(frozen=True)
class JudgeWork:
    """Score every draw of samples, and the real subsets of the draws asked for, in one judge's
    features."""

    name: str
    architecture: str
    path: str
    sha256: str
    samples: tuple  # ((images uint8 [N, 28, 28], labels [N]), ...), one pair a draw
    subsets: tuple  # ((draw, indices into the training set), ...): the ceilings to compute
    num_classes: int

    key = property(lambda self: ("judge", self.name))
    label = property(lambda self: f"judge {self.name}")

    def run(self) -> tuple[dict | None, dict]:
        """(the samples' figures over the draws, or None without samples; {draw: real's score})"""
        from cgan_train.evaluate import Reference, judge_set, over_draws, score
        from cgan_train.judge import JudgeError, load_judge
        from cgan_train.judges import file_sha256

        if file_sha256(Path(self.path)) != self.sha256:  # replaced since it was checked
            raise JudgeError(f"{self.path}: changed while the evaluation ran")
        network, _ = load_judge(Path(self.path))
        test, train = mnist("test"), mnist("train")
        reference = Reference.of(judge_set(network, test.images, test.labels.numpy()), self.num_classes)
        generated = None
        if self.samples:
            generated = over_draws(
                [
                    score(judge_set(network, images, labels), reference, self.num_classes)
                    for images, labels in self.samples
                ]
            )
        real = {
            draw: score(
                judge_set(network, train.images[chosen], train.labels[chosen].numpy()),
                reference,
                self.num_classes,
            )
            for draw, chosen in self.subsets
        }
        return generated, real


@dataclass(frozen=True)
class CasWork:
    """Train one CAS recipe from one seed, on generated images (given) or on the real subset of
    that seed; test it on the real test images."""

    recipe_name: str
    recipe: object  # classifiers.Recipe
    seed: int
    per_digit: int
    num_classes: int
    images: np.ndarray | None = None  # generated images and their labels; None: real images
    labels: np.ndarray | None = None

    key = property(
        lambda self: ("cas", self.recipe_name, self.seed, "real" if self.images is None else "generated")
    )
    label = property(
        lambda self: (
            f"CAS {self.recipe_name} seed {self.seed}: "
            f"{'real' if self.images is None else 'generated'}-trained"
        )
    )

    def run(self) -> dict:
        from cgan_train.cas import real_set, trained_accuracy

        if self.images is None:
            train = real_set(mnist("train"), self.per_digit, self.seed, self.num_classes)
        else:
            train = Digits(torch.from_numpy(self.images), torch.from_numpy(self.labels).long(), "generated")
        return trained_accuracy(train, mnist("test"), self.recipe, self.seed, self.num_classes)


def _run(work) -> tuple[object, float]:
    start = time.monotonic()
    return work.run(), time.monotonic() - start


def run_all(
    works: Iterable,
    data_dir: Path,
    workers: int,
    progress: Callable[[str, object, float], None] = lambda label, result, seconds: None,
) -> dict:
    """Every piece of work's result by its key: in a pool of `workers` processes (spawned, each on
    one thread), or in this process on one thread when workers is 1; started in the order given."""
    works = list(works)
    results = {}
    if workers <= 1 or len(works) <= 1:
        threads = torch.get_num_threads()
        _initialise(str(data_dir))
        try:
            for work in works:
                result, seconds = _run(work)
                results[work.key] = result
                progress(work.label, result, seconds)
        finally:
            torch.set_num_threads(threads)
        return results
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pool's state
    pool = ProcessPoolExecutor(
        min(workers, len(works)),
        mp_context=context,
        initializer=_initialise,
        initargs=(str(data_dir), os.getpid()),
    )
    try:
        futures = {pool.submit(_run, work): work for work in works}
        for future in as_completed(futures):
            work = futures[future]
            result, seconds = future.result()
            results[work.key] = result
            progress(work.label, result, seconds)
    except BaseException:  # a piece failed, or Ctrl-C: stop the others now, not after their work
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results
