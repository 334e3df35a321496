"""cgan-serve: the runtime as an HTTP service, on this machine (uvicorn) or on Ray Serve (--ray)."""

from __future__ import annotations

import math
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cgan_runtime.cli_output import Command
from cgan_runtime.providers import DEVICES

if TYPE_CHECKING:
    from cgan_serve.options import ServeOptions

DEFAULT_PORT = 8000
LOOPBACK = ("127.0.0.1", "localhost", "::1")

EXAMPLES = """\b
Examples:
  cgan-serve                              the bundled model on http://127.0.0.1:8000
  curl -o five.png 'http://127.0.0.1:8000/digits?digit=5&count=16&seed=0'
  cgan-serve --port 0                     any free port (the address is printed)
  cgan-serve --max-batch-size 1           no batching: every request an onnxruntime call of its own
  cgan-serve --ray --replicas 2           the same endpoints on Ray Serve, two replicas
"""


class FiniteFloatRange(click.FloatRange):
    """click's FloatRange with NaN and the infinities refused: NaN passes every bound (each
    comparison with it is false), and a limit of NaN seconds left requests waiting for ever."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


@click.command(cls=Command, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgan-runtime", prog_name="cgan-serve")
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; 0.0.0.0 for every one."
)
@click.option(
    "--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True, help="0: any free port."
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="An ONNX model with the cgan interface. Default: the bundled model.",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Images per onnxruntime call, from requests coalesced; a larger request runs alone. 1: no batching.",
)
@click.option(
    "--max-wait-ms",
    type=FiniteFloatRange(min=0, max=10_000),
    default=0.0,
    show_default=True,
    help="How long a request waits for others to join its batch. 0: none, yet the requests that "
    "arrive while a batch runs make the next one (the fastest here at every load: make bench-serve).",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Requests waiting for a batch; beyond it a request gets 503 at once.",
)
@click.option(
    "--max-count", type=click.IntRange(min=1), default=1024, show_default=True, help="Images per request."
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(min=1024),
    default=8 * 1024 * 1024,
    show_default=True,
    help="Largest request body (also once inflated); larger gets 413.",
)
@click.option(
    "--request-timeout",
    type=FiniteFloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a request may take (its body, its wait and its images); then 503.",
)
@click.option(
    "--drain-timeout",
    type=FiniteFloatRange(min=0),
    default=30.0,
    show_default=True,
    help="On SIGTERM, Ctrl-C or SIGHUP: seconds to finish the requests in flight before exiting "
    "(0: none, exit at once).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="onnxruntime's threads. Default: one per physical core (faster with batching than leaving one to "
    "the server: make bench-serve).",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Open connections and requests at once; beyond them uvicorn answers 503 (and a file "
    "descriptor per idle client is all they cost until then).",
)
@click.option(
    "--web",
    "page",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The browser page to serve at / (make web builds it: web/dist). Default: the checkout's "
    "web/dist when built, else / leads to /docs.",
)
@click.option("--no-web", "no_page", is_flag=True, help="Serve no page: / leads to /docs.")
@click.option("--access-log", is_flag=True, help="Log every request (one line each).")
@click.option(
    "--ray", "on_ray", is_flag=True, help="Serve on Ray Serve instead (pip install 'cgan-runtime[ray]')."
)
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True, help="With --ray.")
@click.option(
    "--ray-address",
    default=None,
    help="With --ray: the cluster to join (ray.init's address, such as auto or ray://head:10001). "
    "Default: a local Ray started for this server.",
)
def main(**options) -> None:
    """Serve handwritten digits over HTTP: GET /digits and /text give the PNGs cgan-run writes, the
    Open Inference Protocol (/v2/...) serves Triton's and KServe's clients, /docs documents it all,
    /metrics is for Prometheus."""
    _check_serve_extra()
    options["page"] = _page(options.pop("page"), options.pop("no_page"))
    on_ray, replicas, ray_address = options.pop("on_ray"), options.pop("replicas"), options.pop("ray_address")
    here_only = {"max_connections": options.pop("max_connections"), "access_log": options.pop("access_log")}
    if not on_ray and (replicas != 1 or ray_address is not None):
        raise click.UsageError("--replicas and --ray-address are for --ray")
    if on_ray:
        _check_ray_options(options)
        from cgan_serve.options import ServeOptions

        if ray_address is None and options["host"] in LOOPBACK:
            # A Ray of this server's own stays on loopback, like the server: Ray reads this when it
            # is imported, and would otherwise register on (and listen at) the machine's address.
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        try:
            from cgan_serve.ray_deployment import serve_on_ray
        except ImportError as error:
            raise click.ClickException(
                f"--ray needs Ray Serve ({error.name or error}): pip install 'cgan-runtime[ray]'"
            ) from None
        serve_on_ray(ServeOptions(**options), replicas, ray_address)
    else:
        from cgan_serve.options import ServeOptions

        _serve_here(ServeOptions(**options), **here_only)


def _page(folder: Path | None, no_page: bool) -> Path | None:
    from cgan_serve.page import PageError, checked_page, default_page

    if no_page:
        if folder is not None:
            raise click.UsageError("--web and --no-web: give one")
        return None
    if folder is None:
        return default_page()
    try:
        return checked_page(folder.resolve())
    except PageError as error:
        raise click.BadParameter(str(error), param_hint="--web") from None


def _check_ray_options(options: dict) -> None:
    """Refuse, and take out, what only the server on this machine has (Ray Serve's proxy does it)."""
    given = click.get_current_context().get_parameter_source
    for name, flag in (("access_log", "--access-log"), ("max_connections", "--max-connections")):
        if given(name) is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(f"{flag} is for the server on this machine; Ray Serve's proxy has its own")
    if options["port"] == 0:
        raise click.UsageError(
            "--port 0 is for the server on this machine; Ray Serve's proxy needs a port named"
        )


def _check_serve_extra() -> None:
    """The serve extra's packages, or one line saying how to get them (the runtime's own install
    has none of them)."""
    import importlib.util

    missing = [
        name
        for name in ("fastapi", "uvicorn", "prometheus_client", "orjson")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise click.ClickException(
            f"cgan-serve needs the serve extra ({', '.join(missing)} missing): "
            "pip install 'cgan-runtime[serve]'"
        )


def _serve_here(options: ServeOptions, max_connections: int, access_log: bool) -> None:
    import uvicorn

    from cgan_runtime.cli_output import load_generator
    from cgan_runtime.streams import print_result
    from cgan_serve.app import build_app
    from cgan_serve.engine import LocalEngine

    generator = load_generator(options.model_path, options.device, one_shot=True, threads=options.threads)
    app = build_app(
        LocalEngine(generator, options.batch_limits()), options.request_limits(), page=options.page
    )
    listening = listen(options.host, options.port)
    bound_host, bound_port = listening.getsockname()[:2]
    config = uvicorn.Config(
        app,
        log_config=log_config(),
        access_log=access_log,
        # Seconds as given: uvicorn waits with asyncio.timeout, which takes fractions, and 0 is no wait
        # (None would be no limit).
        timeout_graceful_shutdown=options.drain_timeout,
        limit_concurrency=max_connections,
        server_header=False,
    )
    server = uvicorn.Server(config)
    _stop_on_signals(server)
    info = generator.info
    # Best effort: a server whose stdout is closed or full still serves (its log says where).
    print_result(
        f"cgan-serve: {generator.model_path.name} ({info.model_version}) on {info.device.provider}; "
        f"http://{_url_host(bound_host)}:{bound_port} ({'the page: /, ' if options.page else ''}API: /docs)"
    )
    server.run(sockets=[listening])


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a taken port or an unknown host is one clear line."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise click.BadParameter(f"cannot resolve {host!r}: {error.strerror}", param_hint="--host") from None
    family, kind, protocol, _, address = infos[0]
    listening = socket.socket(family, kind, protocol)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind(address)
    except OSError as error:
        listening.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {error.strerror or error} (another server on it? "
            "pick another --port)"
        ) from None
    listening.listen(2048)
    listening.set_inheritable(True)
    return listening


def log_config() -> dict:
    """uvicorn's loggers, one plain line each on stderr."""
    line = {"format": "cgan-serve %(levelname)s: %(message)s"}
    handler = {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": line},
        "handlers": {"stderr": handler},
        "loggers": {
            name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "cgan_serve")
        },
    }


def _stop_on_signals(server) -> None:
    """SIGTERM, Ctrl-C and SIGHUP (a closed terminal; unless ignored, as under nohup) all drain the
    requests in flight, then exit 0. uvicorn handles the first two while it runs and raises them
    again once it has stopped: the handlers left in place then have nothing more to do."""
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, lambda number, frame: None)
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda number, frame: server.handle_exit(signal.SIGTERM, frame))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
