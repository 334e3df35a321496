"""The HTTP application: plain picture endpoints (/digits, /text), the Open Inference Protocol
(/v2/...), /metrics, and the OpenAPI page (/docs), over any Engine (this process's batcher, or a
Ray Serve replica). Every refusal is a 4xx with a one-line JSON {"error": ...}."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from cgan_runtime.generator import ModelError
from cgan_runtime.handwriting import random_style
from cgan_runtime.noise import MAX_SEED
from cgan_serve import pictures
from cgan_serve.batcher import QueueFull, Stopping
from cgan_serve.engine import Engine
from cgan_serve.http_limits import BodyLimit
from cgan_serve.metrics import ServerMetrics
from cgan_serve.page import mount_page
from cgan_serve.protocol import (
    EXTENSIONS,
    HEADER_LENGTH,
    RequestError,
    encode_infer_response,
    model_metadata,
    parse_infer_request,
)

log = logging.getLogger("cgan_serve")
MODEL_NAME = "cgan"
RETRY_AFTER_SECONDS = "1"
CLIENT_GONE = 499


@dataclass(frozen=True)
class RequestLimits:
    max_count: int = 1024  # images per request (a PNG grid of 1,024 digits is 962 x 962 pixels)
    max_body_bytes: int = 8 * 1024 * 1024  # 1,024 noise rows as JSON text take about 2 MB
    request_timeout_s: float = 30.0


def build_app(
    engine: Engine,
    limits: RequestLimits = RequestLimits(),
    model_name: str = MODEL_NAME,
    page: Path | None = None,
):
    """The ASGI application serving engine's model as model_name; with page (a built web/dist), the
    browser page at / and the model file it runs beside it."""
    device = engine.info.device.as_labels() if engine.info.device else {}
    metrics = ServerMetrics(engine.queue_depth, device)
    engine.observe_batches(metrics.observe_batch)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await engine.start()
        try:
            yield
        except asyncio.CancelledError:
            # A second Ctrl-C while draining: uvicorn quits at once and skips the lifespan's end,
            # and the event loop's teardown cancels it here. Passed on, Starlette logs it as a
            # traceback; the process is ending, and the requests still in flight are cut off (each
            # logs one line), so there is nothing left to finish.
            log.warning("forced to quit: the requests still in flight were cut off")
            return
        except BaseException:
            await engine.stop()  # any other error thrown in here still stops the workers
            raise
        await engine.stop()  # after the server has finished the requests in flight

    app = FastAPI(
        title="cgan-serve",
        summary="Handwritten digits on demand: PNG endpoints and the Open Inference Protocol (KServe v2)",
        lifespan=lifespan,
    )

    async def generate(noise, labels):
        try:
            return await asyncio.wait_for(engine.generate(noise, labels), limits.request_timeout_s)
        except asyncio.TimeoutError:
            raise _Unavailable(
                f"no images within {limits.request_timeout_s:g} s: the server is overloaded"
            ) from None
        except (QueueFull, Stopping) as error:
            raise _Unavailable(str(error)) from None

    guarded = _Guarded(engine, generate)

    if page is None:

        @app.get("/", include_in_schema=False)
        async def index():
            return RedirectResponse("/docs")

    @app.get(
        "/digits",
        summary="COUNT images of DIGIT, as cgan-run --digit writes them",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "application/octet-stream": {}}}},
    )
    async def digits(
        digit: int = Query(description="The digit to draw (0-9 for the bundled model)"),
        count: int = Query(16, ge=1, le=limits.max_count, description="How many images"),
        seed: int | None = Query(
            None, ge=0, le=MAX_SEED, description="The same seed gives the same bytes; default random"
        ),
        nrow: int | None = Query(None, ge=1, description="Images per row of the PNG grid"),
        invert: bool = Query(False, description="Dark ink on white"),
        format: Literal["png", "npy"] = Query(
            "png", description="png: a grid; npy: uint8 [count, size, size]"
        ),
    ):
        seed = random_style() if seed is None else seed
        picture = await pictures.draw_digits(guarded, digit, count, seed, nrow, invert, format)
        return _picture_response(picture, {"X-Seed": str(seed)})

    @app.get(
        "/text",
        summary="A number in one handwriting, as cgan-run --text writes it",
        response_class=Response,
        responses={200: {"content": {"image/png": {}, "application/octet-stream": {}}}},
    )
    async def text(
        text: str = Query(min_length=1, description="Digits and spaces, such as 2026"),
        style: int | None = Query(None, ge=0, le=MAX_SEED, description="The handwriting; default random"),
        count: int = Query(1, ge=1, le=limits.max_count, description="Rows: styles STYLE, STYLE+1, ..."),
        invert: bool = Query(False, description="Dark ink on white"),
        format: Literal["png", "npy"] = Query(
            "png", description="png: the rows; npy: uint8 [count, size, width]"
        ),
    ):
        style = random_style() if style is None else style
        picture = await pictures.draw_text(guarded, text, count, style, invert, format, limits.max_count)
        return _picture_response(picture, {"X-Style": str(style)})

    @app.get("/v2", summary="Server metadata (Open Inference Protocol)")
    async def server_metadata():
        from cgan_runtime import __version__

        return {"name": "cgan-serve", "version": __version__, "extensions": EXTENSIONS}

    @app.get("/v2/health/live", summary="Liveness")
    async def live():
        return {}

    @app.get("/v2/health/ready", summary="Readiness")
    async def ready():
        return _readiness(engine)

    @app.get("/v2/models/{model}", summary="Model metadata: inputs and outputs with their shapes")
    @app.get("/v2/models/{model}/versions/{version}", include_in_schema=False)
    async def metadata(model: str, version: str | None = None):
        _check_model(model, version, model_name, engine)
        return model_metadata(model_name, engine.info, device)

    @app.get("/v2/models/{model}/ready", summary="Model readiness")
    @app.get("/v2/models/{model}/versions/{version}/ready", include_in_schema=False)
    async def model_ready(model: str, version: str | None = None):
        _check_model(model, version, model_name, engine)
        return _readiness(engine)

    @app.post(
        "/v2/models/{model}/infer",
        summary="Images for noise z [N, latent_dim] and labels [N] (or [N, 1]), JSON or binary tensors",
        response_class=Response,
    )
    @app.post("/v2/models/{model}/versions/{version}/infer", include_in_schema=False, response_class=Response)
    async def infer(model: str, request: Request, version: str | None = None):
        _check_model(model, version, model_name, engine)
        body = await request.body()
        parsed = parse_infer_request(body, request.headers.get(HEADER_LENGTH), engine.info, limits.max_count)
        images = await generate(parsed.noise, parsed.labels)
        content, headers = await asyncio.to_thread(
            encode_infer_response,
            images,
            model_name,
            engine.info.model_version,
            parsed.request_id,
            parsed.binary_output,
        )
        return Response(content, headers=headers)

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics():
        return Response(metrics.exposition(), media_type=metrics.content_type)

    if page is not None:
        mount_page(app, page, engine.model_path)
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout_s=limits.request_timeout_s)
    app.add_middleware(_Measured, metrics=metrics)  # outermost: refusals of the body limit count too
    return app


class _Unavailable(Exception):
    """503: the queue is full, the server is stopping, or no answer came in time."""


class _Guarded:
    """The engine as the picture endpoints see it: its generate() under the request timeout and the
    queue's refusals."""

    def __init__(self, engine: Engine, generate):
        self.info = engine.info
        self.generate = generate


def _picture_response(picture: pictures.Picture, headers: dict[str, str]) -> Response:
    headers = {**headers, "Content-Disposition": f'inline; filename="{picture.file_name}"'}
    return Response(picture.body, media_type=picture.media_type, headers=headers)


def _readiness(engine: Engine) -> JSONResponse:
    if engine.ready:
        return JSONResponse({})
    return JSONResponse({"error": "the model is not ready"}, status_code=503)


def _check_model(model: str, version: str | None, model_name: str, engine: Engine) -> None:
    if model != model_name:
        raise RequestError(f"unknown model {model!r}; this server serves {model_name!r}", status=404)
    if version is not None and version != engine.info.model_version:
        raise RequestError(
            f"unknown version {version!r} of {model_name}; this server has {engine.info.model_version!r}",
            status=404,
        )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def refused(request, error: RequestError):
        return _error(error.status, str(error))

    @app.exception_handler(RequestValidationError)
    async def invalid(request, error: RequestValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
        return _error(
            400, f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid")
        )

    @app.exception_handler(HTTPException)
    async def http_error(request, error: HTTPException):
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404:
            message = f"no such endpoint: {request.url.path} (see /docs)"
        return _error(error.status_code, message, getattr(error, "headers", None))

    @app.exception_handler(_Unavailable)
    async def unavailable(request, error: _Unavailable):
        return _error(503, str(error), {"Retry-After": RETRY_AFTER_SECONDS})

    @app.exception_handler(ModelError)
    async def model_broke(request, error: ModelError):
        log.error("the model failed: %s", error)
        return _error(500, f"the model failed: {error}")


def endpoint_label(path: str) -> str:
    """The metrics' endpoint label: the route, not the path (a path per model or version, or a
    made-up one, would be a new time series each)."""
    if path in ("/digits", "/text", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready"):
        return path
    if path.startswith("/v2/models/"):
        tail = path.rsplit("/", 1)[-1]
        return f"/v2/models/:model/{tail}" if tail in ("infer", "ready") else "/v2/models/:model"
    return "other"


class _Measured:
    """Every response counted and timed, by endpoint and status (an ASGI middleware). An error
    nothing else handled becomes a 500 with one log line: Starlette's own handler would answer
    the same, then re-raise, and the server would log a traceback."""

    def __init__(self, app, metrics: ServerMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), None
        self.metrics.in_progress.inc()

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still in flight when --drain-timeout runs out. Passed on,
            # the cancellation would be logged with a traceback and answered 500; the task is ending
            # anyway, so it ends here, with a 503 when nothing was sent yet.
            log.warning(
                "%s: cut off, the server stopped before answering it (--drain-timeout)", scope["path"]
            )
            if status is None:
                status = 503
                response = _error(503, "the server stopped before the request was answered")
                with suppress(Exception):  # the connection may be gone too
                    await response(scope, receive, send)
        except Exception as error:
            log.error("internal error on %s: %s: %s", scope["path"], type(error).__name__, error)
            if status is None:
                status = 500
                response = _error(500, f"internal error ({type(error).__name__}); see the server's log")
                await response(scope, receive, send)
        finally:
            # No status at all: the request was cancelled, its client gone (499, as nginx counts it).
            answered = CLIENT_GONE if status is None else status
            # Lowered before the answer is counted, not after as track_inprogress() would: a scrape
            # from another thread in between then misses a request for an instant, never counts it
            # twice, held and answered (the tests wait on that sum).
            self.metrics.in_progress.dec()
            self.metrics.observe_request(
                endpoint_label(scope["path"]), answered, time.perf_counter() - started
            )
