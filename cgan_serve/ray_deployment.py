"""cgan-serve on Ray Serve: the same application (app.py) in every replica, each replica one
onnxruntime session whose calls Ray Serve's own @serve.batch coalesces, so a cluster needs no new
code. Three ways to start it:

    cgan-serve --ray --replicas 2                      a local Ray, or --ray-address to join one
    serve run cgan_serve.ray_deployment:app            Ray's own command, the defaults
    serve run cgan_serve.ray_deployment:build replicas=2 max_batch_size=128
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ray import serve

from cgan_runtime.generator import DigitGenerator
from cgan_serve.app import MODEL_NAME, RequestLimits, build_app
from cgan_serve.options import ServeOptions

# Each replica holds a fraction of a CPU and one onnxruntime thread: on a small machine, replicas
# that claim whole CPUs leave none for Ray's own proxy and controller (ray #44687), and several
# sessions of one thread each use the cores better than several of all the cores.
REPLICA_CPUS = 0.5
REPLICA_THREADS = 1
# Requests a replica takes at once: Ray Serve's default (5) would cap every batch at 5 requests.
MAX_ONGOING_REQUESTS = 128
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _listen_on_the_node_address() -> None:
    """Ray Serve 2.60's replicas open an inter-deployment gRPC port on every address ("[::]:0")
    whatever the node's address is; a Ray kept on loopback would still listen outward. Point that
    one call at the node's own address (127.0.0.1 there, the node's IP in a cluster). Called by
    every replica's constructor, which runs before the replica starts that server (the class
    reaches the replica pickled by value, so this module's own top level never runs there)."""
    import ray
    from ray.serve._private import replica

    everywhere = "[::]:"
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "on_node_address", False):
        return

    def on_node_address(server, address: str):
        if address.startswith(everywhere):
            node = ray.util.get_node_ip_address()
            address = (
                f"[{node}]:{address[len(everywhere) :]}"
                if ":" in node
                else f"{node}:{address[len(everywhere) :]}"
            )
        return original(server, address)

    on_node_address.on_node_address = True
    replica.add_port_to_grpc_server = on_node_address


@serve.deployment(
    ray_actor_options={"num_cpus": REPLICA_CPUS},
    max_ongoing_requests=MAX_ONGOING_REQUESTS,
    max_queued_requests=128,
)
@serve.ingress()
class CganReplica:
    """One replica: a generator, batched by Ray Serve, behind the cgan-serve application. It is the
    application's Engine itself."""

    def __init__(
        self,
        model_path: str | None = None,
        device: str = "auto",
        max_batch_size: int = 256,
        max_wait_ms: float = 0.0,
        max_count: int = 1024,
        max_body_bytes: int = RequestLimits.max_body_bytes,
        request_timeout: float = RequestLimits.request_timeout_s,
        threads: int = REPLICA_THREADS,
        page: str | None = None,
    ):
        _listen_on_the_node_address()
        self.generator = DigitGenerator(model_path, device=device, one_shot=True, threads=threads)
        self.info = self.generator.info
        self.model_path = self.generator.model_path
        self.page = Path(page) if page else None
        self.ready = False
        self.max_batch_size = max_batch_size
        self.limits = RequestLimits(max_count, max_body_bytes, request_timeout)
        self._observer: Callable[[int, int], None] = lambda images, requests: None
        self._queued = 0
        self.generate_batch.set_max_batch_size(max_batch_size)
        self.generate_batch.set_batch_wait_timeout_s(max_wait_ms / 1000)

    def __serve_build_asgi_app__(self):
        return build_app(self, self.limits, MODEL_NAME, self.page)

    # The Engine the application asks of: its generate() goes through Ray Serve's batching.
    async def start(self) -> None:
        self.ready = True

    async def stop(self) -> None:
        self.ready = False

    def observe_batches(self, observer: Callable[[int, int], None]) -> None:
        self._observer = observer

    def queue_depth(self) -> int:
        return self._queued

    async def generate(self, noise: np.ndarray, labels: np.ndarray) -> np.ndarray:
        if len(labels) > self.max_batch_size:  # larger than any batch: it runs alone, as in cgan-serve
            self._observer(len(labels), 1)
            return await asyncio.to_thread(self.generator.generate, noise, labels)
        self._queued += 1
        try:
            return await self.generate_batch((noise, labels))
        finally:
            self._queued -= 1

    @serve.batch(
        max_batch_size=256,
        batch_wait_timeout_s=0.0,
        batch_size_fn=lambda items: sum(len(i[1]) for i in items),
    )
    async def generate_batch(self, requests: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        noise = np.concatenate([request_noise for request_noise, _ in requests])
        labels = np.concatenate([request_labels for _, request_labels in requests])
        self._observer(len(labels), len(requests))
        images = await asyncio.to_thread(self.generator.generate, noise, labels)
        bounds = np.cumsum([0, *(len(request_labels) for _, request_labels in requests)])
        return [images[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]


def build(args: dict[str, str]):
    """The application for `serve run cgan_serve.ray_deployment:build key=value ...`: replicas,
    max_queue and the replica's own arguments (model_path, device, max_batch_size, max_wait_ms,
    max_count, max_body_bytes, request_timeout, threads, page)."""
    settings = dict(args)
    replicas = int(settings.pop("replicas", 1))
    max_queue = int(settings.pop("max_queue", 128))
    kinds = {"max_batch_size": int, "max_count": int, "max_body_bytes": int, "threads": int}
    kinds |= {"max_wait_ms": float, "request_timeout": float}
    replica_args = {key: kinds.get(key, str)(value) for key, value in settings.items()}
    return CganReplica.options(num_replicas=replicas, max_queued_requests=max_queue).bind(**replica_args)


app = CganReplica.bind()


def serve_on_ray(options: ServeOptions, replicas: int, ray_address: str | None) -> None:
    """cgan-serve --ray: the deployment on Ray Serve, its HTTP proxy on host:port, until a stop
    signal; then Ray Serve drains the replicas and the server exits 0."""
    import click
    import ray

    from cgan_runtime.cli_output import load_generator
    from cgan_runtime.streams import note, print_or_exit

    # A bad model is one line, before Ray starts.
    generator = load_generator(options.model_path, options.device, one_shot=True)
    ignored = {number for number in STOP_SIGNALS if signal.getsignal(number) is signal.SIG_IGN}
    try:
        ray.init(address=ray_address, include_dashboard=False, logging_level="warning", log_to_driver=False)
    except (OSError, RuntimeError, ValueError) as error:  # ConnectionError is an OSError
        raise click.ClickException(f"cannot start or join Ray ({ray_address or 'local'}): {error}") from None
    try:
        address = {"host": options.host, "port": options.port}
        serve.start(http_options=address, logging_config={"log_level": "WARNING"})
        deployment = CganReplica.options(
            num_replicas=replicas,
            max_queued_requests=options.max_queue,
            graceful_shutdown_timeout_s=max(options.drain_timeout, 1.0),
        )
        serve.run(
            deployment.bind(
                str(generator.model_path),
                options.device,
                options.max_batch_size,
                options.max_wait_ms,
                options.max_count,
                options.max_body_bytes,
                options.request_timeout,
                options.threads or REPLICA_THREADS,
                str(options.page) if options.page else None,
            ),
            name=MODEL_NAME,
            route_prefix="/",
            blocking=False,
        )
        print_or_exit(
            f"cgan-serve on Ray Serve: {replicas} replica(s) of {generator.model_path.name} "
            f"({generator.info.model_version}); http://{options.host}:{options.port} (API: /docs)",
            "started",
            "the address",
        )
        # After ray.init, which puts in handlers of its own that would end this process on the spot.
        stop = threading.Event()
        for number in set(STOP_SIGNALS) - ignored:
            signal.signal(number, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
        note("cgan-serve: stopping: Ray Serve finishes the requests in flight")
        serve.shutdown()
    finally:
        ray.shutdown()
