"""Concurrent requests coalesced into one onnxruntime call: a bounded queue, a maximum batch size
(in images) and a maximum wait, as Triton's dynamic batcher and Ray Serve's @serve.batch do.

One worker thread runs the calls, one at a time: onnxruntime's own threads already use every core,
so two calls side by side would only take turns on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np


class QueueFull(Exception):
    """The queue holds its maximum: the client should retry later (HTTP 503)."""


class Stopping(Exception):
    """The server is shutting down and takes no new work."""


@dataclass
class _Pending:
    noise: np.ndarray
    labels: np.ndarray
    future: asyncio.Future
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class BatchLimits:
    max_batch_size: int  # images per onnxruntime call; a larger request runs alone (1: no batching)
    max_wait_s: float  # how long a first request waits for others to join it
    max_queue: int  # requests waiting, beyond which a new one is refused at once


class MicroBatcher:
    """submit(noise, labels) -> that request's own images, drawn in a batch with its neighbours."""

    def __init__(
        self,
        run: Callable[[np.ndarray, np.ndarray], np.ndarray],
        limits: BatchLimits,
        on_batch: Callable[[int, int], None] = lambda images, requests: None,
    ):
        self._run = run
        self.limits = limits
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cgan-onnxruntime")
        self._worker: asyncio.Task | None = None
        self._stopping = False

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work())

    async def submit(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """The generator's output for these inputs; QueueFull at once when the queue is full."""
        if self._stopping:
            raise Stopping("the server is shutting down")
        if len(self._queue) >= self.limits.max_queue:
            raise QueueFull(f"the queue is full ({len(self._queue)} requests waiting); retry later")
        pending = _Pending(noise, labels, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future  # cancelled (a timeout, a client gone): the batch skips it

    async def stop(self) -> None:
        """Finish what is queued and running, then stop the worker."""
        self._stopping = True
        while self._queue or not self._idle.is_set():
            await self._idle.wait()
            await asyncio.sleep(0)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
            self._idle.clear()
            try:
                await self._gather()
                batch = self._take_batch()
                if batch:
                    await self._run_batch(batch)
            finally:
                if not self._queue:
                    self._idle.set()

    async def _gather(self) -> None:
        """Wait, up to max_wait after the oldest request arrived, for a full batch."""
        deadline = self._queue[0].queued_at + self.limits.max_wait_s
        while self._queued_images() < self.limits.max_batch_size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                return

    def _queued_images(self) -> int:
        return sum(len(pending.labels) for pending in self._queue if not pending.future.done())

    def _take_batch(self) -> list[_Pending]:
        """Whole requests from the front of the queue, up to max_batch_size images (at least one)."""
        batch: list[_Pending] = []
        images = 0
        while self._queue:
            pending = self._queue[0]
            if pending.future.done():  # cancelled while it waited
                self._queue.popleft()
                continue
            if batch and images + len(pending.labels) > self.limits.max_batch_size:
                break
            batch.append(self._queue.popleft())
            images += len(pending.labels)
        return batch

    async def _run_batch(self, batch: list[_Pending]) -> None:
        noise = np.concatenate([pending.noise for pending in batch])
        labels = np.concatenate([pending.labels for pending in batch])
        self._on_batch(len(labels), len(batch))
        try:
            images = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._run, noise, labels
            )
        except Exception as error:  # the model's fault: every request of the batch gets it
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(error)
            return
        start = 0
        for pending in batch:
            stop = start + len(pending.labels)
            if not pending.future.done():
                pending.future.set_result(images[start:stop])
            start = stop
