"""What the HTTP application asks of the model, and its one-machine form: a DigitGenerator whose
calls the MicroBatcher coalesces. (The Ray Serve form, ray_deployment.py, batches with Ray's own
@serve.batch instead; the application cannot tell them apart.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from cgan_runtime.generator import DigitGenerator, ModelInfo
from cgan_serve.batcher import BatchLimits, MicroBatcher


class Engine(Protocol):
    info: ModelInfo
    model_path: Path  # the file the browser page is given, so that it draws what the server draws
    ready: bool

    async def generate(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Raw images float32 [N, 1, size, size] for checked noise [N, latent_dim] and labels [N]."""

    def queue_depth(self) -> int: ...

    def observe_batches(self, observer: Callable[[int, int], None]) -> None:
        """Call observer(images, requests) for every onnxruntime call."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class LocalEngine:
    """One generator in this process, its calls batched."""

    def __init__(self, generator: DigitGenerator, limits: BatchLimits):
        self.generator = generator
        self.info = generator.info
        self.model_path = generator.model_path
        self.limits = limits
        self.ready = False
        self._observer: Callable[[int, int], None] = lambda images, requests: None
        self._batcher: MicroBatcher | None = None

    def observe_batches(self, observer: Callable[[int, int], None]) -> None:
        self._observer = observer

    async def start(self) -> None:
        # Made here, in the server's event loop: its events and futures belong to that loop.
        self._batcher = MicroBatcher(
            self.generator.generate, self.limits, lambda *sizes: self._observer(*sizes)
        )
        self._batcher.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self._batcher is not None:
            await self._batcher.stop()

    async def generate(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if self._batcher is None:
            raise RuntimeError("the engine has not started")
        return await self._batcher.submit(noise, labels)

    def queue_depth(self) -> int:
        return self._batcher.queue_depth if self._batcher is not None else 0
