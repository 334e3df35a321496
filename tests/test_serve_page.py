"""cgan-serve's side of the browser page: the built site at / with the isolation headers that
multi-threaded wasm needs, the server's own model beside it, gzip twins, and the API untouched."""

from __future__ import annotations

import gzip
import subprocess

import pytest
from starlette.testclient import TestClient

from cgan_runtime import DigitGenerator
from cgan_serve.app import build_app
from cgan_serve.batcher import BatchLimits
from cgan_serve.engine import LocalEngine
from tests.conftest import BUNDLED_MODEL
from tests.helpers import CGAN_SERVE

ISOLATED = {"cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp"}
WASM = b"\0asm" + bytes(range(256)) * 64


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    (folder / "index.html").write_text("<!doctype html><title>cgan</title>")
    (folder / "ort").mkdir()
    (folder / "ort" / "ort-wasm-simd-threaded.wasm").write_bytes(WASM)
    (folder / "ort" / "ort-wasm-simd-threaded.wasm.gz").write_bytes(gzip.compress(WASM))
    (folder / "model").mkdir()
    (folder / "model" / "cgan_generator.onnx").write_bytes(b"the copy the build made")
    return folder


@pytest.fixture(scope="module")
def client(site):
    engine = LocalEngine(DigitGenerator(BUNDLED_MODEL, device="cpu"), BatchLimits(256, 0, 128))
    with TestClient(build_app(engine, page=site)) as running:
        yield running


def isolated(response) -> bool:
    return all(response.headers.get(name) == value for name, value in ISOLATED.items())


def test_the_page_is_at_the_root_with_the_isolation_headers(client):
    response = client.get("/")
    assert response.status_code == 200 and "<title>cgan</title>" in response.text
    assert isolated(response)


def test_the_page_gets_the_servers_own_model(client):
    response = client.get("/model/cgan_generator.onnx")
    assert response.status_code == 200 and response.content == BUNDLED_MODEL.read_bytes()
    assert isolated(response)
    head = client.head("/model/cgan_generator.onnx")
    assert head.status_code == 200 and int(head.headers["content-length"]) == BUNDLED_MODEL.stat().st_size


def test_a_file_with_a_gzip_twin_goes_out_compressed_to_a_client_that_takes_gzip(client):
    compressed = client.get("/ort/ort-wasm-simd-threaded.wasm", headers={"Accept-Encoding": "gzip"})
    assert compressed.headers["content-encoding"] == "gzip"
    assert compressed.headers["content-type"] == "application/wasm" and isolated(compressed)
    assert int(compressed.headers["content-length"]) < len(WASM)
    assert compressed.content == WASM  # httpx inflates it
    plain = client.get("/ort/ort-wasm-simd-threaded.wasm", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == WASM


@pytest.mark.parametrize("path", ["/no-such-file.js", "/..%2f..%2fetc%2fpasswd", "/ort/../../../etc/passwd"])
def test_a_path_outside_the_page_is_a_404_in_one_json_line(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"].startswith("no such endpoint") and "root:" not in response.text


def test_the_api_is_unchanged_beside_the_page(client):
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/models/cgan/infer").status_code == 405  # a method the endpoint lacks
    assert client.get("/docs").status_code == 200
    assert client.get("/digits?digit=3&count=2&seed=0").headers["content-type"] == "image/png"


def test_without_a_page_the_root_leads_to_the_api_docs():
    engine = LocalEngine(DigitGenerator(BUNDLED_MODEL, device="cpu"), BatchLimits(256, 0, 128))
    with TestClient(build_app(engine)) as running:
        response = running.get("/", follow_redirects=False)
    assert response.status_code in (302, 307) and response.headers["location"] == "/docs"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--web", "/no/such/folder"], "/no/such/folder: not found; build the page with make web"),
        (["--web", "/tmp"], "/tmp: has no index.html"),
        (["--web", "/tmp", "--no-web"], "--web and --no-web: give one"),
    ],
)
def test_a_bad_page_folder_is_one_line(arguments, message):
    result = subprocess.run([str(CGAN_SERVE), *arguments], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
