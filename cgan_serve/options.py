"""What cgan-serve is asked for on its command line, the same whether it serves here or on Ray
Serve: the model, where to listen, and the limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cgan_serve.app import RequestLimits
from cgan_serve.batcher import BatchLimits


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    model_path: Path | None
    device: str
    max_batch_size: int
    max_wait_ms: float
    max_queue: int
    max_count: int
    max_body_bytes: int
    request_timeout: float
    drain_timeout: float
    threads: int | None
    page: Path | None  # the built browser page served at /; None: / leads to /docs

    def batch_limits(self) -> BatchLimits:
        return BatchLimits(self.max_batch_size, self.max_wait_ms / 1000, self.max_queue)

    def request_limits(self) -> RequestLimits:
        return RequestLimits(self.max_count, self.max_body_bytes, self.request_timeout)
