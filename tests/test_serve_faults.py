"""cgan-serve against bad and hostile requests: each a 4xx with a one-line JSON error (never a 500,
never a traceback in the log), a full queue a 503 at once, and a stop signal a drain and exit 0."""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import re
import signal
import socket
import subprocess
import threading
import time
import zlib

import numpy as np
import pytest

from tests.helpers import CGAN_SERVE, RunningServer

pytestmark = [pytest.mark.faults, pytest.mark.xdist_group("serve")]
LATENT = 100
MAX_BODY = 65536
MAX_COUNT = 64


@pytest.fixture(scope="module")
def server():
    running = RunningServer(
        "--port",
        "0",
        "--max-count",
        str(MAX_COUNT),
        "--max-body-bytes",
        str(MAX_BODY),
        "--request-timeout",
        "5",
    )
    yield running
    code, stderr = running.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr


def request(server, method: str, path: str, body: bytes = b"", headers: dict | None = None):
    host, port = server.address.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    finally:
        connection.close()


def infer_body(noise_shape=(2, LATENT), labels=(1, 2), labels_shape=None, **changes) -> bytes:
    noise = np.zeros(noise_shape, dtype=np.float32)
    inputs = [
        {"name": "z", "shape": list(noise_shape), "datatype": "FP32", "data": noise.ravel().tolist()},
        {"name": "labels", "shape": labels_shape or [len(labels)], "datatype": "INT64", "data": list(labels)},
    ]
    document = {"inputs": inputs, **changes}
    return json.dumps(document).encode()


def binary_body(noise: np.ndarray, labels: np.ndarray, sizes=None) -> tuple[bytes, int]:
    raw = [noise.astype("<f4").tobytes(), labels.astype("<i8").tobytes()]
    sizes = sizes or [len(part) for part in raw]
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "z",
                    "shape": list(noise.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": sizes[0]},
                },
                {
                    "name": "labels",
                    "shape": list(labels.shape),
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": sizes[1]},
                },
            ]
        }
    ).encode()
    return header + b"".join(raw), len(header)


INFER = "/v2/models/cgan/infer"
ZEROS = np.zeros((2, LATENT), dtype=np.float32)
TWO_LABELS = np.array([3, 4])


def _binary(noise=ZEROS, labels=TWO_LABELS, sizes=None, header_length=None, extra=b"", cut=0):
    body, length = binary_body(noise, labels, sizes)
    return body[: len(body) - cut] + extra, {
        "Inference-Header-Content-Length": str(length if header_length is None else header_length)
    }


def _nested(depth: int) -> bytes:
    return b'{"inputs": ' + b"[" * depth + b"]" * depth + b"}"


BAD_REQUESTS = {
    # The picture endpoints
    "digit 10": ("GET", "/digits?digit=10", b"", {}, 400, "not a digit in 0-9"),
    "digit five": ("GET", "/digits?digit=five", b"", {}, 400, "digit: "),
    "no digit": ("GET", "/digits", b"", {}, 400, "digit: "),
    "count 0": ("GET", "/digits?digit=1&count=0", b"", {}, 400, "count: "),
    "count over the limit": ("GET", f"/digits?digit=1&count={MAX_COUNT + 1}", b"", {}, 400, "count: "),
    "seed -1": ("GET", "/digits?digit=1&seed=-1", b"", {}, 400, "seed: "),
    "seed of 5,000 digits": ("GET", "/digits?digit=1&seed=" + "9" * 5000, b"", {}, 400, "seed: "),
    "nrow 0": ("GET", "/digits?digit=1&nrow=0", b"", {}, 400, "nrow: "),
    "format gif": ("GET", "/digits?digit=1&format=gif", b"", {}, 400, "format: "),
    "invert maybe": ("GET", "/digits?digit=1&invert=maybe", b"", {}, 400, "invert: "),
    "text 20a6": ("GET", "/text?text=20a6", b"", {}, 400, "character 'a' (position 3)"),
    "text empty": ("GET", "/text?text=", b"", {}, 400, "text: "),
    "styles past the last": (
        "GET",
        f"/text?text=12&count=2&style={2**64 - 1}",
        b"",
        {},
        400,
        "style: 2 rows from style 18446744073709551615 run past the last style",
    ),
    "text with a non-ASCII digit": ("GET", "/text?text=%D9%A3", b"", {}, 400, "is not a digit"),
    "text too long": ("GET", "/text?text=" + "1" * (MAX_COUNT + 1), b"", {}, 400, "at most 64"),
    "text rows too many": ("GET", "/text?text=12&count=40", b"", {}, 400, "at most 64"),
    # Routing
    "unknown path": ("GET", "/nothing", b"", {}, 404, "no such endpoint"),
    "unknown model": ("POST", "/v2/models/mnist/infer", infer_body(), {}, 404, "unknown model 'mnist'"),
    "unknown version": (
        "POST",
        "/v2/models/cgan/versions/7/infer",
        infer_body(),
        {},
        404,
        "unknown version '7'",
    ),
    "GET on infer": ("GET", INFER, b"", {}, 405, "Method Not Allowed"),
    # JSON infer requests
    "malformed JSON": ("POST", INFER, b'{"inputs": [', {}, 400, "not valid JSON"),
    "not UTF-8": ("POST", INFER, b"\xff\xfe{}", {}, 400, "not valid JSON"),
    "a JSON list": ("POST", INFER, b"[]", {}, 400, "must be a JSON object"),
    "empty body": ("POST", INFER, b"", {}, 400, "not valid JSON"),
    "JSON nested 30,000 deep": ("POST", INFER, _nested(30_000), {}, 400, "not valid JSON"),
    "inputs not a list": ("POST", INFER, b'{"inputs": 3}', {}, 400, "inputs must be"),
    "no labels": (
        "POST",
        INFER,
        json.dumps({"inputs": [json.loads(infer_body())["inputs"][0]]}).encode(),
        {},
        400,
        "missing input labels",
    ),
    "an input twice": (
        "POST",
        INFER,
        json.dumps({"inputs": json.loads(infer_body())["inputs"] * 2}).encode(),
        {},
        400,
        "given twice",
    ),
    "unknown input": (
        "POST",
        INFER,
        infer_body().replace(b'"labels"', b'"digits"'),
        {},
        400,
        "unknown input 'digits'",
    ),
    "z of the wrong width": (
        "POST",
        INFER,
        infer_body(noise_shape=(2, 99)),
        {},
        400,
        "must have shape [N, 100]",
    ),
    "z as FP64": ("POST", INFER, infer_body().replace(b'"FP32"', b'"FP64"'), {}, 400, "datatype FP32"),
    "labels as INT32": (
        "POST",
        INFER,
        infer_body().replace(b'"INT64"', b'"INT32"'),
        {},
        400,
        "datatype INT64",
    ),
    "labels [N, 2]": (
        "POST",
        INFER,
        infer_body(labels=(1, 2, 3, 4), labels_shape=[2, 2]),
        {},
        400,
        "[2] or [2, 1]",
    ),
    "labels for 3 rows": ("POST", INFER, infer_body(labels=(1, 2, 3)), {}, 400, "[2] or [2, 1]"),
    "label 10": ("POST", INFER, infer_body(labels=(1, 10)), {}, 400, "a digit in 0-9"),
    "label -1": ("POST", INFER, infer_body(labels=(-1, 2)), {}, 400, "a digit in 0-9"),
    "label 1.5": ("POST", INFER, infer_body(labels=(1.5, 2)), {}, 400, "whole numbers"),
    "label beyond INT64": ("POST", INFER, infer_body(labels=(2**63, 2**63)), {}, 400, "beyond INT64"),
    "label 10**30": ("POST", INFER, infer_body(labels=(10**30, 2)), {}, 400, "whole numbers"),
    "labels as strings": ("POST", INFER, infer_body(labels=("1", "2")), {}, 400, "whole numbers"),
    "labels as booleans": ("POST", INFER, infer_body(labels=(True, False)), {}, 400, "whole numbers"),
    # JSON has no NaN: a body that writes one is not JSON (binary NaN: below).
    "z with NaN": ("POST", INFER, infer_body().replace(b"0.0", b"NaN", 1), {}, 400, "not valid JSON"),
    "shape and data disagree": (
        "POST",
        INFER,
        infer_body().replace(b"[2, 100]", b"[3, 100]"),
        {},
        400,
        "needs 300 values",
    ),
    "shape of strings": (
        "POST",
        INFER,
        infer_body().replace(b"[2, 100]", b'["2", 100]'),
        {},
        400,
        "shape must be",
    ),
    "no images asked": (
        "POST",
        INFER,
        infer_body(noise_shape=(0, LATENT), labels=()),
        {},
        400,
        "at least one image",
    ),
    "too many images": (
        "POST",
        INFER,
        infer_body(noise_shape=(MAX_COUNT + 1, LATENT), labels=(1,) * (MAX_COUNT + 1)),
        {},
        400,
        "at most 64",
    ),
    "unknown output": (
        "POST",
        INFER,
        infer_body(outputs=[{"name": "logits"}]),
        {},
        400,
        "unknown output 'logits'",
    ),
    "binary_data_output not a flag": (
        "POST",
        INFER,
        infer_body(parameters={"binary_data_output": "yes"}),
        {},
        400,
        "true or false",
    ),
    "id a number": ("POST", INFER, infer_body(id=7), {}, 400, "id must be a string"),
    # The binary extension
    "header length beyond the body": ("POST", INFER, *_binary(header_length=10**9), 400, "the body holds"),
    "header length 0": ("POST", INFER, *_binary(header_length=0), 400, "the body holds"),
    "header length not a number": (
        "POST",
        INFER,
        _binary()[0],
        {"Inference-Header-Content-Length": "12x"},
        400,
        "whole number",
    ),
    "header length negative": (
        "POST",
        INFER,
        _binary()[0],
        {"Inference-Header-Content-Length": "-5"},
        400,
        "the body holds",
    ),
    "binary data cut short": ("POST", INFER, *_binary(cut=8), 400, "only 8 follow"),
    "binary size of another shape": ("POST", INFER, *_binary(sizes=[796, 16]), 400, "needs 800"),
    "binary size negative": ("POST", INFER, *_binary(sizes=[-800, 16]), 400, "whole number"),
    "bytes left over": ("POST", INFER, *_binary(extra=b"\0" * 8), 400, "add up to 816"),
    "binary NaN": (
        "POST",
        INFER,
        *_binary(noise=np.full((2, LATENT), np.nan, dtype=np.float32)),
        400,
        "NaN or infinite",
    ),
    # Bodies
    "a 2 GB body announced": (
        "POST",
        INFER,
        b"",
        {"Content-Length": str(2 * 1024**3)},
        413,
        "at most 65,536",
    ),
    "a body over the limit": ("POST", INFER, b" " * (MAX_BODY + 1), {}, 413, "at most 65,536"),
    "a gzip bomb": (
        "POST",
        INFER,
        gzip.compress(b" " * 50_000_000),
        {"Content-Encoding": "gzip"},
        413,
        "inflated body",
    ),
    "gzip that is not": (
        "POST",
        INFER,
        b"not gzip at all",
        {"Content-Encoding": "gzip"},
        400,
        "not valid gzip",
    ),
    "gzip cut short": (
        "POST",
        INFER,
        gzip.compress(infer_body())[:-30],
        {"Content-Encoding": "gzip"},
        400,
        "cut short",
    ),
    "gzip with junk after it": (
        "POST",
        INFER,
        gzip.compress(infer_body()) + b"junk",
        {"Content-Encoding": "gzip"},
        400,
        "not valid gzip",
    ),
    "gzip of 3,000 empty members": (
        "POST",
        INFER,
        gzip.compress(b"", mtime=0) * 3000,
        {"Content-Encoding": "gzip"},
        400,
        "a gzip body of more than 16 members; send one",
    ),
    "deflate with bytes after its end": (
        "POST",
        INFER,
        zlib.compress(infer_body()) + b"junk",
        {"Content-Encoding": "deflate"},
        400,
        "the deflate body has 4 bytes after its end",
    ),
    "brotli": ("POST", INFER, infer_body(), {"Content-Encoding": "br"}, 415, "unsupported Content-Encoding"),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_a_bad_request_is_a_4xx_with_a_one_line_json_error(server, case):
    method, path, body, headers, status, words = BAD_REQUESTS[case]
    if "Content-Length" in headers:  # announced, not sent: the server must answer without waiting for it
        answer, text = announce_only(server, path, headers["Content-Length"])
        assert answer == status and words in text
        return
    answer, reply, reply_headers = request(server, method, path, body, headers)
    assert answer == status, reply
    error = json.loads(reply)["error"]
    assert words in error and "\n" not in error
    assert reply_headers["content-type"] == "application/json"


def announce_only(server, path: str, length: str) -> tuple[int, str]:
    host, port = server.address.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode())
        return read_response(connection)


def read_response(connection: socket.socket) -> tuple[int, str]:
    """(status, body) of one HTTP response read off a raw socket: the head, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536) or b"\r\n\r\n"
    head, body = data.split(b"\r\n\r\n", 1)
    lengths = [
        line.split(b":", 1)[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    ]
    while lengths and len(body) < int(lengths[0]):
        more = connection.recv(65536)
        if not more:
            break
        body += more
    return int(head.split()[1]), body.decode(errors="replace")


def test_a_compressed_request_is_answered_like_a_plain_one(server):
    plain = request(server, "POST", INFER, infer_body())
    body = infer_body()
    two_members = gzip.compress(body[:100]) + gzip.compress(body[100:])  # as gzip -d reads it
    for encoding, packed in (
        ("gzip", gzip.compress(body)),
        ("gzip", two_members),
        ("gzip", gzip.compress(body) + b"\0" * 8),  # padded, as some writers leave it
        ("deflate", zlib.compress(body)),
    ):
        answer = request(server, "POST", INFER, packed, {"Content-Encoding": encoding})
        assert answer[0] == 200 and answer[1] == plain[1]


def test_the_server_held_after_every_bad_request(server):
    # Run after the cases above (same module, same server): it still answers, and said no traceback.
    status, body, _ = request(server, "GET", "/digits?digit=1&count=2&seed=0")
    assert status == 200 and body.startswith(b"\x89PNG")


def test_a_body_that_never_finishes_gets_408_within_the_timeout():
    slow = RunningServer("--port", "0", "--request-timeout", "1")
    try:
        host, port = slow.address.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{".encode())
            started = time.monotonic()
            status, reply = read_response(connection)
        assert status == 408 and "did not arrive within 1 s" in reply
        assert time.monotonic() - started < 5
    finally:
        assert slow.stop()[0] == 0


def wait_for_requests_received(server, count: int, endpoint: str = "/digits", timeout: float = 60) -> None:
    """Until the server's /metrics says it has received `count` requests to `endpoint`: those it has
    answered and those it holds (any endpoint's, the one reading /metrics aside: send no others)."""
    deadline = time.monotonic() + timeout
    while True:
        text = request(server, "GET", "/metrics")[1].decode()
        held = float(re.search(r"^cgan_requests_in_progress (\S+)$", text, re.M).group(1)) - 1
        answered = sum(
            float(value)
            for value in re.findall(
                rf'^cgan_requests_total{{endpoint="{endpoint}",status="\d+"}} (\S+)$', text, re.M
            )
        )
        if held + answered >= count:
            return
        assert time.monotonic() < deadline, (
            f"the server had {held + answered:.0f} of {count} requests after {timeout} s"
        )
        time.sleep(0.05)


def concurrent_gets(server, paths: list[str]) -> list[tuple[int, bytes, float]]:
    """All at once, each on a connection of its own: (status, body, seconds) in order."""
    answers: list = [None] * len(paths)

    def ask(index: int) -> None:
        started = time.monotonic()
        status, body, _ = request(server, "GET", paths[index])
        answers[index] = (status, body, time.monotonic() - started)

    threads = [threading.Thread(target=ask, args=(index,)) for index in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers


def test_a_full_queue_answers_503_at_once_and_the_rest_is_served():
    # One request per onnxruntime call and room for two waiting: of 24 large requests at once, some
    # must be refused; a refusal comes without waiting for the others' images.
    busy = RunningServer("--port", "0", "--max-batch-size", "1", "--max-queue", "2")
    try:
        answers = concurrent_gets(
            busy, [f"/digits?digit=3&count=1024&seed={i}&format=npy" for i in range(24)]
        )
    finally:
        code, stderr = busy.stop()
    refused = [answer for answer in answers if answer[0] == 503]
    served = [answer for answer in answers if answer[0] == 200]
    assert refused and served and len(refused) + len(served) == len(answers)
    assert all("the queue is full" in json.loads(body)["error"] for _, body, _ in refused)
    slowest_served = max(seconds for _, _, seconds in served)
    assert min(seconds for _, _, seconds in refused) < slowest_served
    assert code == 0 and "Traceback" not in stderr


def test_a_request_that_waits_past_the_timeout_gets_503():
    slow = RunningServer("--port", "0", "--max-batch-size", "1", "--request-timeout", "0.05")
    try:
        answers = concurrent_gets(
            slow, [f"/digits?digit=3&count=1024&seed={i}&format=npy" for i in range(12)]
        )
    finally:
        code, stderr = slow.stop()
    late = [json.loads(body)["error"] for status, body, _ in answers if status == 503]
    assert late and all("no images within 0.05 s" in error for error in late)
    assert {status for status, _, _ in answers} <= {200, 503}
    assert code == 0 and "Traceback" not in stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_stop_signal_finishes_the_requests_in_flight_then_exits_0(stop_signal):
    running = RunningServer("--port", "0")
    answers: list = []
    asking = threading.Thread(
        target=lambda: answers.extend(
            concurrent_gets(running, [f"/digits?digit=7&count=1024&seed={i}&format=npy" for i in range(16)])
        )
    )
    asking.start()
    # Stop once the server holds all 16 (on a busy machine 0.3 s was not always enough: a request
    # still in the listen queue when the server stops listening is reset, not "in flight").
    wait_for_requests_received(running, 16)
    code, stderr = running.stop(stop_signal)
    asking.join(60)
    assert code == 0, stderr
    assert [status for status, _, _ in answers] == [200] * 16
    assert all(len(body) == 128 + 1024 * 28 * 28 for _, body, _ in answers)  # whole npy files
    assert "Traceback" not in stderr


@contextlib.contextmanager
def held_request(running):
    """A request in flight until the server stops: its body never finishes arriving."""
    host, port = running.address.split(":")
    held = socket.create_connection((host, int(port)), timeout=30)
    try:
        held.sendall(f"POST {INFER} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{{".encode())
        wait_for_requests_received(running, 1, endpoint="/v2/models/:model/infer")
        yield held
    finally:
        held.close()


def test_a_drain_timeout_of_0_cuts_a_held_request_at_once_with_a_503_and_one_log_line():
    # 0 used to mean no limit at all (uvicorn's None): the server waited the request's whole 30 s.
    running = RunningServer("--port", "0", "--drain-timeout", "0")
    with held_request(running) as held:
        started = time.monotonic()
        code, stderr = running.stop()
        stopped_in = time.monotonic() - started
        answer = held.recv(65536).decode(errors="replace")
    assert code == 0, stderr
    assert stopped_in < 10, stopped_in
    assert answer.startswith("HTTP/1.1 503"), answer
    assert "the server stopped before the request was answered" in answer
    assert "Traceback" not in stderr and "Exception in ASGI application" not in stderr, stderr


def test_a_second_ctrl_c_while_draining_quits_at_once_with_one_line_and_no_traceback():
    # uvicorn skips the lifespan's end on a forced quit; its cancellation was logged as a traceback.
    running = RunningServer("--port", "0", "--drain-timeout", "60")
    host, port = running.address.split(":")
    with held_request(running):
        started = time.monotonic()
        running.process.send_signal(signal.SIGINT)  # drain, for up to 60 s
        # Two signals close together are one to Python: the second goes once the first was taken,
        # which the server shows by no longer listening.
        while time.monotonic() - started < 20 and _listening(host, int(port)):
            time.sleep(0.05)
        code, stderr = running.stop(signal.SIGINT)  # and again: quit now
        stopped_in = time.monotonic() - started
    assert code == 0, stderr
    assert stopped_in < 30, stopped_in
    assert "forced to quit: the requests still in flight were cut off" in stderr, stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def test_a_taken_port_is_one_line_and_exit_1():
    first = RunningServer("--port", "0")
    try:
        port = first.address.split(":")[1]
        import subprocess

        from tests.helpers import CGAN_SERVE

        second = subprocess.run([CGAN_SERVE, "--port", port], capture_output=True, text=True, timeout=60)
    finally:
        first.stop()
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server on it? pick another --port)"
    ]


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["--model", "missing.onnx"], 1, "model file missing.onnx: not found"),
        (["--host", "no-such-host.invalid"], 2, "cannot resolve 'no-such-host.invalid'"),
        (["--port", "70000"], 2, "70000 is not in the range"),
        (["--max-batch-size", "0"], 2, "0 is not in the range"),
        (["--replicas", "2"], 2, "--replicas and --ray-address are for --ray"),
        (["--ray", "--port", "0"], 2, "Ray Serve's proxy needs a port named"),
        (["--device", "tpu"], 2, "'tpu' is not one of"),
        (
            ["--ray", "--port", "8000", "--max-connections", "5"],
            2,
            "--max-connections is for the server on this",
        ),
        (["--ray", "--port", "8000", "--access-log"], 2, "--access-log is for the server on this machine"),
        (["--max-wait-ms", "nan"], 2, "'nan' is not a finite number"),
        (["--request-timeout", "nan"], 2, "'nan' is not a finite number"),
        (["--drain-timeout", "inf"], 2, "'inf' is not a finite number"),
    ],
)
def test_a_bad_start_is_one_line_and_a_non_zero_exit(args, code, words, tmp_path):
    result = subprocess.run([CGAN_SERVE, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == code
    assert words in result.stderr and "Traceback" not in result.stderr
