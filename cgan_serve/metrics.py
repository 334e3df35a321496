"""The server's Prometheus metrics (/metrics): requests, errors, latency, batch sizes, queue depth,
and the device the model really runs on. One registry per application, so that two servers in one
process (tests, Ray replicas) keep their own counts."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Seconds: a 16-digit request takes about a millisecond alone, a full queue a good part of a second.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, queue_depth: Callable[[], int], device: dict[str, str]):
        self.registry = CollectorRegistry()
        labels = ["endpoint", "status"]
        self.requests = Counter("cgan_requests", "HTTP requests answered", labels, registry=self.registry)
        # Received and not yet answered (this scrape included): what a stop signal waits for.
        self.in_progress = Gauge(
            "cgan_requests_in_progress", "HTTP requests received and not yet answered", registry=self.registry
        )
        self.errors = Counter(
            "cgan_request_errors",
            "HTTP requests answered with a 4xx or 5xx status",
            labels,
            registry=self.registry,
        )
        self.latency = Histogram(
            "cgan_request_latency_seconds",
            "Time from a request's arrival to its response",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_images = Histogram(
            "cgan_batch_images", "Images per onnxruntime call", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.batch_requests = Histogram(
            "cgan_batch_requests",
            "Requests coalesced into one onnxruntime call",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        queue = Gauge("cgan_queue_depth", "Requests waiting for a batch", registry=self.registry)
        queue.set_function(queue_depth)
        device_info = Gauge(
            "cgan_device_info",
            "The device asked for and the onnxruntime execution provider that really runs the model",
            list(device),
            registry=self.registry,
        )
        device_info.labels(**device).set(1)

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        if status >= 400:
            self.errors.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def observe_batch(self, images: int, requests: int) -> None:
        self.batch_images.observe(images)
        self.batch_requests.observe(requests)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
