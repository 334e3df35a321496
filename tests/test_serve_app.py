"""The application in-process, with engines that fail as no real model can be made to on demand:
a model that breaks mid-run, a bug. Each is a 500 with one line of JSON and one log line."""

from __future__ import annotations

import asyncio
import logging

import pytest
from starlette.testclient import TestClient

from cgan_runtime import DigitGenerator, ModelError
from cgan_serve.app import build_app, endpoint_label


class FailingEngine:
    def __init__(self, error: Exception):
        self.info = DigitGenerator(device="cpu").info
        self.ready = True
        self.error = error
        self.stopped = False

    async def generate(self, noise, labels):
        raise self.error

    def queue_depth(self) -> int:
        return 0

    def observe_batches(self, observer) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        self.stopped = True


@pytest.mark.parametrize(
    "error, words",
    [
        (
            ModelError("m.onnx: its output holds NaN or infinite values (digits 3); the model is broken"),
            "the model failed",
        ),
        (ZeroDivisionError("a bug"), "internal error (ZeroDivisionError); see the server's log"),
    ],
)
def test_a_failure_behind_the_endpoint_is_a_500_with_one_json_line_and_one_log_line(error, words, caplog):
    with (
        TestClient(build_app(FailingEngine(error)), raise_server_exceptions=False) as client,
        caplog.at_level(logging.ERROR),
    ):
        response = client.get("/digits?digit=3&count=2&seed=0")
        metrics = client.get("/metrics").text
    assert response.status_code == 500
    assert words in response.json()["error"] and "\n" not in response.json()["error"]
    (record,) = [record for record in caplog.records if record.name == "cgan_serve"]
    assert record.exc_info is None and "\n" not in record.getMessage()
    assert 'cgan_request_errors_total{endpoint="/digits",status="500"} 1.0' in metrics


def test_the_endpoint_label_is_the_route_not_the_path():
    assert endpoint_label("/v2/models/anything/versions/7/infer") == "/v2/models/:model/infer"
    assert endpoint_label("/v2/models/cgan") == "/v2/models/:model"
    assert endpoint_label("/made/up/path") == "other"


async def _thrown_into_the_lifespan(engine, error):
    app = build_app(engine)
    async with app.router.lifespan_context(app):
        raise error


@pytest.mark.parametrize("error", [RuntimeError("the server broke"), KeyboardInterrupt()])
def test_an_error_while_serving_still_stops_the_engine(error):
    engine = FailingEngine(ZeroDivisionError("unused"))
    with pytest.raises(type(error)):
        asyncio.run(_thrown_into_the_lifespan(engine, error))
    assert engine.stopped


def test_a_forced_quit_is_one_log_line_and_leaves_the_engine_to_the_process_end(caplog):
    engine = FailingEngine(ZeroDivisionError("unused"))
    with caplog.at_level(logging.WARNING):
        asyncio.run(_thrown_into_the_lifespan(engine, asyncio.CancelledError()))
    assert not engine.stopped
    (record,) = [record for record in caplog.records if record.name == "cgan_serve"]
    assert record.getMessage() == "forced to quit: the requests still in flight were cut off"
