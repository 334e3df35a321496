"""cgan-serve as its clients see it, here and on Ray Serve: the PNGs cgan-run writes, and the Open
Inference Protocol driven by tritonclient (a client nobody here wrote), in JSON and binary."""

from __future__ import annotations

import os
import re
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.http as triton

from cgan_runtime import DigitGenerator
from tests.conftest import BUNDLED_MODEL, REPO_ROOT
from tests.helpers import RAY_ENV, RunningServer, cgan_run, free_port, outward_listeners, short_ray_folder

pytestmark = pytest.mark.xdist_group("serve")  # one server per kind, shared by this module's tests
# Long enough a wait that concurrent requests surely share a batch, short enough not to slow the tests.
SERVER_FLAGS = ("--max-wait-ms", "20")


@pytest.fixture(scope="module", params=["here", pytest.param("ray", marks=pytest.mark.slow)])
def server(request, tmp_path_factory):
    outward_before = outward_listeners()
    if request.param == "here":
        running = RunningServer("--port", "0", *SERVER_FLAGS)
        running.on_ray = False
    else:
        ray_dir = short_ray_folder()
        request.addfinalizer(lambda: shutil.rmtree(ray_dir, ignore_errors=True))
        env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(ray_dir)}
        running = RunningServer(
            "--ray", "--replicas", "2", "--port", str(free_port()), *SERVER_FLAGS, env=env, start_timeout=180
        )
        running.on_ray = True
    running.outward_before = outward_before
    yield running
    code, stderr = running.stop()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_the_server_and_its_ray_listen_on_loopback_only(server):
    assert outward_listeners() - server.outward_before == set()


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    return DigitGenerator(device="cpu")


@pytest.fixture
def client(server):
    """A tritonclient closed by the test that used it: one left to the garbage collector may be
    collected in another test's worker thread, where its gevent pool cannot close."""
    with triton.InferenceServerClient(server.address) as client:
        yield client


def get(server: RunningServer, path: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(f"http://{server.url}{path}", timeout=60) as response:
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as error:
        return error.code, error.read(), {k.lower(): v for k, v in error.headers.items()}


@pytest.mark.parametrize(
    "query, cli_flags",
    [
        ("digit=5&count=16&seed=0", ["--digit", "5", "--count", "16", "--seed", "0"]),
        ("digit=8&count=1&seed=3", ["--digit", "8", "--count", "1", "--seed", "3"]),
        (
            "digit=2&count=30&seed=7&nrow=10&invert=true",
            ["--digit", "2", "--count", "30", "--seed", "7", "--nrow", "10", "--invert"],
        ),
        (
            "digit=3&count=20&seed=1&format=npy",
            ["--digit", "3", "--count", "20", "--seed", "1", "--format", "npy"],
        ),
    ],
)
def test_digits_are_the_bytes_cgan_run_writes(server, tmp_path, query, cli_flags):
    status, body, headers = get(server, f"/digits?{query}")
    assert status == 200, body
    out = tmp_path / ("out.npy" if "npy" in query else "out.png")
    result = cgan_run(*cli_flags, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert body == out.read_bytes()
    assert headers["content-type"] == ("application/octet-stream" if "npy" in query else "image/png")


@pytest.mark.parametrize(
    "query, cli_flags",
    [
        ("text=2026&style=1", ["--text", "2026", "--style", "1"]),
        (
            "text=12%2034&style=5&count=3&invert=true",
            ["--text", "12 34", "--style", "5", "--count", "3", "--invert"],
        ),
        (
            "text=907&style=2&count=2&format=npy",
            ["--text", "907", "--style", "2", "--count", "2", "--format", "npy"],
        ),
    ],
)
def test_text_is_the_bytes_cgan_run_writes(server, tmp_path, query, cli_flags):
    status, body, _ = get(server, f"/text?{query}")
    assert status == 200, body
    out = tmp_path / ("out.npy" if "npy" in query else "out.png")
    result = cgan_run(*cli_flags, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert body == out.read_bytes()


def test_without_a_seed_the_response_names_the_one_it_drew(server):
    status, body, headers = get(server, "/digits?digit=4&count=4")
    assert status == 200
    again = get(server, f"/digits?digit=4&count=4&seed={headers['x-seed']}")
    assert again[1] == body


def infer_inputs(noise: np.ndarray, labels: np.ndarray, binary: bool) -> list:
    z = triton.InferInput("z", list(noise.shape), "FP32")
    z.set_data_from_numpy(noise, binary_data=binary)
    digits = triton.InferInput("labels", list(labels.shape), "INT64")
    digits.set_data_from_numpy(labels, binary_data=binary)
    return [z, digits]


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("labels_shape", ["[N]", "[N, 1]"])
def test_tritonclient_gets_the_generators_images(client, generator, binary, labels_shape):
    rng = np.random.default_rng(11)
    noise = rng.standard_normal((12, generator.info.latent_dim), dtype=np.float32)
    labels = rng.integers(0, 10, 12).astype(np.int64)
    sent = labels if labels_shape == "[N]" else labels[:, None]
    # No outputs named: tritonclient asks for binary outputs; named with binary_data=False: JSON.
    outputs = None if binary else [triton.InferRequestedOutput("images", binary_data=False)]
    result = client.infer("cgan", infer_inputs(noise, sent, binary), outputs=outputs, request_id="r-1")
    images = result.as_numpy("images")
    assert images.dtype == np.float32 and images.shape == (12, 1, 28, 28)
    assert np.array_equal(images, generator.generate(noise, labels))
    assert result.get_response()["id"] == "r-1"


def test_concurrent_requests_share_batches_and_each_gets_its_own_images(server, generator):
    rng = np.random.default_rng(5)
    requests = [
        (rng.standard_normal((n, generator.info.latent_dim), dtype=np.float32), rng.integers(0, 10, n))
        for n in (1, 7, 16, 3, 16, 9, 2, 16) * 3
    ]

    def ask(request):
        noise, labels = request
        client = triton.InferenceServerClient(server.address)
        try:
            return client.infer("cgan", infer_inputs(noise, labels.astype(np.int64), True)).as_numpy("images")
        finally:  # in this thread: left to the garbage collector, another thread's close fails in gevent
            client.close()

    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(ask, requests))
    for (noise, labels), images in zip(requests, answers, strict=True):
        assert np.array_equal(images, generator.generate(noise, labels))
    # Each replica counts its own (/metrics reaches one of them): in one that took part, fewer
    # onnxruntime calls than requests. The module's other tests send one request at a time.
    snapshots = [batch_counts(server) for _ in range(20 if server.on_ray else 1)]
    assert any(calls < requests for calls, requests in snapshots), snapshots


def batch_counts(server) -> tuple[float, float]:
    """(onnxruntime calls, requests they held) so far, in the replica /metrics reaches."""
    text = get(server, "/metrics")[1].decode()
    count = re.search(r"^cgan_batch_requests_count (\S+)$", text, re.MULTILINE)
    total = re.search(r"^cgan_batch_requests_sum (\S+)$", text, re.MULTILINE)
    return float(count.group(1)), float(total.group(1))


def test_health_and_metadata_give_the_graphs_names_types_and_shapes(client):
    import onnxruntime

    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("cgan")
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata("cgan")
    session = onnxruntime.InferenceSession(str(BUNDLED_MODEL), providers=["CPUExecutionProvider"])
    graph = {node.name: node for node in [*session.get_inputs(), *session.get_outputs()]}
    datatypes = {"tensor(float)": "FP32", "tensor(int64)": "INT64"}
    for tensor in [*metadata["inputs"], *metadata["outputs"]]:
        node = graph[tensor["name"]]
        assert tensor["datatype"] == datatypes[node.type]
        assert tensor["shape"] == [dim if isinstance(dim, int) else -1 for dim in node.shape]
    assert {tensor["name"] for tensor in [*metadata["inputs"], *metadata["outputs"]]} == set(graph)
    assert metadata["parameters"]["execution_provider"] == "CPUExecutionProvider"
    assert metadata["parameters"]["requested_device"] == "auto"


def test_an_unknown_model_is_a_404_the_client_reports(client):
    with pytest.raises(triton.InferenceServerException) as raised:
        client.get_model_metadata("mnist")
    assert raised.value.status() == "404" and "serves 'cgan'" in raised.value.message()


def test_metrics_count_requests_errors_latency_batches_queue_and_device(server):
    for _ in range(10):  # on Ray, each replica counts its own: enough that both have some
        get(server, "/digits?digit=10")
    every_replica = (
        "cgan_request_latency_seconds_bucket{",
        "cgan_batch_images_bucket{",
        "cgan_queue_depth ",
        "cgan_requests_in_progress ",
        'cgan_device_info{execution_provider="CPUExecutionProvider",requested_device="auto"} 1.0',
    )
    errors = (
        'cgan_request_errors_total{endpoint="/digits",status="400"}',
        'cgan_requests_total{endpoint="/digits",status="400"}',
    )
    reads = [get(server, "/metrics")[1].decode() for _ in range(10 if server.on_ray else 1)]
    assert all(line in text for text in reads for line in every_replica)
    assert any(all(line in text for line in errors) for text in reads)


def test_the_openapi_page_shows_the_endpoints(server):
    status, page, _ = get(server, "/docs")
    assert status == 200 and b"swagger" in page.lower()
    schema = get(server, "/openapi.json")[1].decode()
    for path in ("/digits", "/text", "/v2/models/{model}/infer", "/v2/health/ready", "/metrics"):
        assert f'"{path}"' in schema


def readme_snippet() -> str:
    """The README's tritonclient snippet, as a user copies it."""
    readme = (REPO_ROOT / "README.md").read_text()
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "tritonclient" in block
    ]
    return snippet


def test_the_readmes_client_snippet_runs_unchanged(server, generator):
    snippet = readme_snippet()
    assert '"127.0.0.1:8000"' in snippet
    namespace: dict = {}
    exec(snippet.replace('"127.0.0.1:8000"', repr(server.address)), namespace)  # only the address differs
    expected = generator.generate(namespace["z"], namespace["labels"].reshape(-1))
    assert np.array_equal(namespace["images"], expected)
