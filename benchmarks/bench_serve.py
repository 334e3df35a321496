"""make bench-serve: cgan-serve with and without batching, its Ray Serve deployment, and the peers a
user would pick instead (MLServer, and a real Triton), under the same load in one run ->
docs/serving.md. Also the README's client snippet against Triton, and the server's memory under a
long load.

The load comes from wrk (Debian's package) on the same machine: each client is one keep-alive
connection asking again as soon as it has its answer, 16 digits a request. The machine is shared by
the load and the server, so the figures are for comparing the rows of one run, not absolute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cgan_runtime.streams import note, print_or_exit

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "serve_peers"
BIN = Path(sys.executable).parent
CONCURRENCY = (1, 8, 64)
IMAGES_PER_REQUEST = 16
LATENT_DIM = 100
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
MLSERVER = "mlserver==1.7.1"
PYTRITON = "nvidia-pytriton==0.7.0"  # ships a real tritonserver 2.51 (python backend only)
KINDS = {
    "binary": "v2 infer, binary tensors (tritonclient's default)",
    "json": "v2 infer, JSON tensors",
    "png": "GET /digits (PNG)",
    "single": "v2 infer, binary tensors, 1 digit a request",
}


@dataclass
class Server:
    name: str
    command: list[str]
    kinds: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/v2/health/ready"
    start_timeout: float = 120
    note: str = ""
    port: int = 0  # 0: a free one, put in place of {port} in the command


@dataclass
class Load:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    failures: int


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "serving.md")
    parser.add_argument("--seconds", type=float, default=10, help="Load per point (server, kind, clients).")
    parser.add_argument("--memory-seconds", type=float, default=300)
    parser.add_argument("--bench-dir", type=Path, default=REPO_ROOT / ".bench", help="The peers' venvs.")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("make bench-serve needs wrk: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    try:
        scripts = write_load_scripts(work)
        peers = prepare_peers(args.bench_dir, work)
        servers = cgan_servers(work) + peers
        results, snippet_checks = {}, {}
        for server in servers:
            print_or_exit(f"== {server.name}", "ready to measure", f"{server.name}'s heading")
            results[server.name], snippet_checks[server.name] = measure(server, scripts, args.seconds)
        memory = measure_memory(scripts["png"], args.memory_seconds)
        model = model_cost()
        write_report(args.report, servers, results, snippet_checks, memory, model, args)
        save_measurements(args.bench_dir / "serving.json", results, snippet_checks, memory, model)
        note(f"wrote {args.report}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def cgan_servers(work: Path) -> list[Server]:
    serve = str(BIN / "cgan-serve")
    ray_env = {**RAY_ENV, "RAY_TMPDIR": str(work / "ray")}
    (work / "ray").mkdir()
    return [
        Server("cgan-serve, batching", [serve, "--port", "{port}"], ("binary", "json", "png", "single")),
        Server(
            "cgan-serve, batching, --threads 1 (a core left to the server)",
            [serve, "--port", "{port}", "--threads", "1"],
            ("binary",),
        ),
        Server(
            "cgan-serve, no batching",
            [serve, "--port", "{port}", "--max-batch-size", "1"],
            ("binary", "json", "png", "single"),
        ),
        Server(
            "cgan-serve on Ray Serve, 2 replicas",
            [serve, "--ray", "--replicas", "2", "--port", "{port}"],
            ("binary", "json", "png", "single"),
            env=ray_env,
            start_timeout=240,
        ),
    ]


def prepare_peers(bench_dir: Path, work: Path) -> list[Server]:
    """MLServer and Triton, each in a venv of its own (made once, in bench_dir), serving the bundled
    model with their own batching."""
    wheel = build_wheel(work)
    mlserver_env = venv_with(bench_dir / "mlserver", [MLSERVER, f"{wheel}"])
    triton_env = venv_with(bench_dir / "triton", [PYTRITON, "numpy<2", f"{wheel}"])
    model_dir = work / "mlserver" / "cgan"
    model_dir.mkdir(parents=True)
    shutil.copy(PEERS / "mlserver_runtime.py", model_dir)
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "cgan",
                "implementation": "mlserver_runtime.CganRuntime",
                # Requests per batch: 16 of 16 digits are cgan-serve's 256 images.
                "max_batch_size": 256 // IMAGES_PER_REQUEST,
                "max_batch_time": 0.002,
                "inputs": [
                    {"name": "z", "datatype": "FP32", "shape": [-1, LATENT_DIM]},
                    {"name": "labels", "datatype": "INT64", "shape": [-1, 1]},
                ],
                "outputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 1, 28, 28]}],
            }
        )
    )
    # Its best set-up here: inference in the server process (parallel_workers 0: a worker process
    # was slower, and fails to start with uvloop 0.22 and later), no access log, no gzip; loopback
    # only, no metrics server, gRPC (which MLServer cannot turn off) on loopback too.
    mlserver_port = free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": mlserver_port,
        "grpc_port": free_port(),
        "metrics_endpoint": None,
        "parallel_workers": 0,
        "debug": False,
        "gzip_enabled": False,
    }
    (work / "mlserver" / "settings.json").write_text(json.dumps(settings))
    site = site_packages(triton_env)
    repository = triton_repository(work / "triton")
    backends = triton_backends(site, work / "triton-backends")
    tritonserver = site / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    return [
        Server(
            "MLServer 1.7.1, adaptive batching",
            [str(mlserver_env / "bin" / "mlserver"), "start", str(work / "mlserver")],
            ("json",),
            ready_path="/v2/models/cgan/ready",
            port=mlserver_port,
            note="REST takes JSON tensors only",
        ),
        Server(
            "Triton 2.51, dynamic batching (python backend)",
            [
                str(tritonserver),
                f"--model-repository={repository}",
                f"--backend-directory={backends}",
                "--http-address=127.0.0.1",
                "--http-port={port}",
                "--allow-grpc=false",
                "--allow-metrics=false",
                "--log-warning=false",
                "--log-info=false",
            ],
            ("binary", "json", "single"),
            env={"LD_LIBRARY_PATH": str(site / "nvidia_pytriton.libs"), "CGAN_SITE_PACKAGES": str(site)},
            note="the onnxruntime backend is in NGC containers only: the python backend runs the same file",
        ),
    ]


def build_wheel(work: Path) -> Path:
    dist = work / "dist"
    run(
        [BIN / "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, REPO_ROOT]
    )
    (wheel,) = dist.glob("cgan_runtime-*.whl")
    return wheel


def venv_with(path: Path, packages: list[str]) -> Path:
    if not (path / "bin" / "python").exists():
        run([sys.executable, "-m", "venv", path])
    run([path / "bin" / "pip", "install", "--quiet", "--force-reinstall", "--no-deps", packages[-1]])
    run([path / "bin" / "pip", "install", "--quiet", *packages])
    return path


def site_packages(env: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(run([env / "bin" / "python", "-c", code]).stdout.strip())


def triton_repository(folder: Path) -> Path:
    """cgan-train triton-repository's files, served by the python backend instead of onnxruntime."""
    run([BIN / "cgan-train", "triton-repository", "--models", REPO_ROOT / "models", "--out", folder])
    for config in folder.glob("*/config.pbtxt"):
        text = config.read_text()
        assert 'platform: "onnxruntime_onnx"' in text
        config.write_text(text.replace('platform: "onnxruntime_onnx"', 'backend: "python"'))
        shutil.copy(PEERS / "triton_model.py", config.parent / "1" / "model.py")
    return folder


def triton_backends(site: Path, folder: Path) -> Path:
    shipped = site / "pytriton" / "tritonserver"
    (folder / "python").mkdir(parents=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        shutil.copy(shipped / "backends" / "python" / name, folder / "python")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    shutil.copy(shipped / "python_backend_stubs" / version / "triton_python_backend_stub", folder / "python")
    return folder


def write_load_scripts(work: Path) -> dict[str, Path]:
    """wrk's Lua scripts: the same 16 digits as binary and as JSON v2 requests, 1 digit as a binary
    one, and /digits with a new seed each request."""
    json_body, (binary_header, binary_body) = v2_bodies(IMAGES_PER_REQUEST)
    _, (single_header, single_body) = v2_bodies(1)
    (work / "json.body").write_bytes(json_body)
    (work / "binary.body").write_bytes(binary_body)
    (work / "single.body").write_bytes(single_body)
    post = """local f = assert(io.open("{body}", "rb"))
wrk.method = "POST"
wrk.path = "/v2/models/cgan/infer"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "{content_type}"
{extra}"""
    length = 'wrk.headers["Inference-Header-Content-Length"] = "{}"'
    scripts = {
        "json": post.format(body=work / "json.body", content_type="application/json", extra=""),
        "binary": post.format(
            body=work / "binary.body",
            content_type="application/octet-stream",
            extra=length.format(binary_header),
        ),
        "single": post.format(
            body=work / "single.body",
            content_type="application/octet-stream",
            extra=length.format(single_header),
        ),
        "png": """counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/digits?digit=5&count=16&seed=" .. counter)
end""",
    }
    paths = {}
    for kind, text in scripts.items():
        paths[kind] = work / f"{kind}.lua"
        paths[kind].write_text(text)
    return paths


def v2_bodies(count: int) -> tuple[bytes, tuple[int, bytes]]:
    """A v2 request for count digits (the same noise each time) as JSON, and as the binary
    extension's (header length, body)."""
    noise = np.random.default_rng(0).standard_normal((count, LATENT_DIM), dtype=np.float32)
    labels = np.full((count, 1), 5, dtype=np.int64)
    json_body = json.dumps(
        {
            "inputs": [
                {"name": "z", "shape": list(noise.shape), "datatype": "FP32", "data": noise.ravel().tolist()},
                {
                    "name": "labels",
                    "shape": list(labels.shape),
                    "datatype": "INT64",
                    "data": labels.ravel().tolist(),
                },
            ],
            "outputs": [{"name": "images", "parameters": {"binary_data": False}}],
        }
    ).encode()
    raw = [noise.tobytes(), labels.tobytes()]
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "z",
                    "shape": list(noise.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw[0])},
                },
                {
                    "name": "labels",
                    "shape": list(labels.shape),
                    "datatype": "INT64",
                    "parameters": {"binary_data_size": len(raw[1])},
                },
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    return json_body, (len(header), header + b"".join(raw))


def measure(server: Server, scripts: dict[str, Path], seconds: float) -> tuple[dict, str]:
    port = server.port or free_port()
    command = [part.replace("{port}", str(port)) for part in server.command]
    url = f"http://127.0.0.1:{port}"
    results = {}
    with started(command, server.env, url + server.ready_path, server.start_timeout):
        binary = "binary" in server.kinds
        snippet = run_readme_snippet(f"127.0.0.1:{port}") if binary else "not run (no binary tensors)"
        for kind in server.kinds:
            wrk(url, scripts[kind], 8, 3)  # warm-up: sessions, caches, Ray's routing
            for clients in CONCURRENCY:
                load = results[(kind, clients)] = wrk(url, scripts[kind], clients, seconds)
                print_or_exit(
                    f"  {kind:6} {clients:3} clients: {load.requests_per_second:7.1f} req/s, "
                    f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms, failures {load.failures}",
                    f"measured {server.name}",
                    "its row",
                )
    return results, snippet


@contextmanager
def started(command: list, env: dict[str, str], ready_url: str, timeout: float) -> Iterator[subprocess.Popen]:
    """The server running and ready; stopped with SIGTERM (its process group killed if it lingers).
    Its log goes to a file: a pipe nobody reads would fill and stop a server that logs each request."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [str(part) for part in command],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
        try:
            wait_ready(ready_url, timeout, process, log)
            yield process
        finally:
            stop(process)


def run_readme_snippet(address: str) -> str:
    """The README's tritonclient snippet as written, only the address changed; compared with the
    bundled model run here on the same inputs."""
    readme = (REPO_ROOT / "README.md").read_text()
    (snippet,) = [
        block for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL) if "tritonclient" in block
    ]
    namespace: dict = {}
    exec(snippet.replace('"127.0.0.1:8000"', repr(address)), namespace)
    from cgan_runtime import DigitGenerator

    expected = DigitGenerator(device="cpu").generate(namespace["z"], namespace["labels"].reshape(-1))
    return "the same images" if np.array_equal(namespace["images"], expected) else "OTHER IMAGES"


def wrk(url: str, script: Path, clients: int, seconds: float) -> Load:
    result = run(["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--latency", "-s", script, url])
    text = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    failures = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if socket_errors:
        failures += sum(int(n) for n in socket_errors.groups())
    return Load(rate, latency_ms(text, "50%"), latency_ms(text, "99%"), failures)


def latency_ms(text: str, percentile: str) -> float:
    """wrk's latency percentile in ms (NaN when no request finished)."""
    found = re.search(rf"^\s+{percentile}\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    if found is None:
        return float("nan")
    value, unit = found.groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]


def measure_memory(png_script: Path, seconds: float) -> dict:
    """cgan-serve (batching) under 64 clients on /digits for `seconds`: its resident memory every 5 s."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    samples = []
    with started([BIN / "cgan-serve", "--port", port], {}, url + "/v2/health/ready", 60) as process:
        load = subprocess.Popen(
            ["wrk", "-t1", "-c64", f"-d{seconds:g}s", "--latency", "-s", str(png_script), url],
            stdout=subprocess.PIPE,
            text=True,
        )
        started_at = time.monotonic()
        while load.poll() is None:
            samples.append((time.monotonic() - started_at, rss_mb(process.pid)))
            time.sleep(5)
        requests = int(re.search(r"(\d+) requests in", load.stdout.read()).group(1))
    return {"samples": samples, "requests": requests, "seconds": seconds}


def model_cost(seconds: float = 2.0) -> dict[int, float]:
    """Microseconds per image of one onnxruntime call of 1, 16 and 256 images, with the threads
    cgan-serve gives onnxruntime: what batching can save in the model itself."""
    from cgan_runtime import DigitGenerator

    generator = DigitGenerator(device="cpu", one_shot=True)
    cost = {}
    for count in (1, IMAGES_PER_REQUEST, 256):
        noise = np.random.default_rng(0).standard_normal((count, LATENT_DIM), dtype=np.float32)
        labels = np.full(count, 5)
        generator.generate(noise, labels)
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            generator.generate(noise, labels)
            calls += 1
        cost[count] = (time.perf_counter() - started) / calls / count * 1e6
    return cost


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


def wait_ready(url: str, timeout: float, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"{process.args[0]} exited: {log.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"not ready within {timeout} s: {url}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed: {result.stderr[-2000:]}")
    return result


def write_report(
    path: Path, servers: list[Server], results: dict, snippets: dict, memory: dict, model: dict, args
) -> None:
    import onnxruntime

    lines = [
        "# Serving: speed under load, and memory",
        "",
        f"Written by `make bench-serve` (`benchmarks/bench_serve.py --seconds {args.seconds:g} "
        f"--memory-seconds {args.memory_seconds:g}`) on {time.strftime('%Y-%m-%d')}: {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}), Python {platform.python_version()}, onnxruntime "
        f"{onnxruntime.__version__}, the bundled int8 model. Every server ran on this machine, one at a "
        "time, with the load generator (wrk, one thread) beside it on the same cores: compare the rows of "
        "this run, not the figures with another machine's.",
        "",
        f"A client is one keep-alive connection that asks again as soon as it has its answer, "
        f"{IMAGES_PER_REQUEST} digits a request ({args.seconds:g} s per point, after 3 s of warm-up). "
        "v2 requests send the same noise and labels each time (labels as [16, 1], which every server "
        "here takes); `/digits` asks for a new seed each time. Failures: non-2xx answers and socket errors.",
        "",
    ]
    for kind, title in KINDS.items():
        rows = [server for server in servers if kind in server.kinds]
        lines += [
            f"## {title}",
            "",
            "| server | " + " | ".join(f"{c} client{'s' * (c > 1)}" for c in CONCURRENCY) + " |",
            "|---|" + "---|" * len(CONCURRENCY),
        ]
        for server in rows:
            cells = []
            for clients in CONCURRENCY:
                load = results[server.name][(kind, clients)]
                failed = f", {load.failures} failed" if load.failures else ""
                rate = f"{load.requests_per_second:,.0f} req/s"
                cells.append(f"{rate}, p50 {load.p50_ms:.1f} / p99 {load.p99_ms:.1f} ms{failed}")
            lines.append(f"| {server.name} | " + " | ".join(cells) + " |")
        lines += ["", *ratios(kind, results), ""]
    single, batch, full = model[1], model[IMAGES_PER_REQUEST], model[256]
    lines += [
        "## Reading the rows",
        "",
        "- **Ray Serve** adds a hop (its HTTP proxy, then a replica: two processes and a serialisation per "
        "request) that shares these two cores with the replicas and the load: its rows are the cost of "
        "that hop on one small machine. What it buys is the next machine, with the same application "
        "([deploying](deploy.md)).",
        "- **Triton** here runs its python backend, which hands every batch to a Python process of its own "
        "through shared memory: its onnxruntime backend, what Triton users run, comes in NGC containers "
        "only. Its rows are a check that the protocol and the snippet work against the real server, not "
        "Triton's speed with onnxruntime.",
        "- **MLServer** is the peer: the same DigitGenerator in a custom runtime, with MLServer's adaptive "
        "batching, inference in a thread beside its event loop, no worker process, no access log.",
        "",
    ]
    lines += [
        "## The goals",
        "",
        *goals(results),
        "",
        "What batching can save is bounded by the model: one onnxruntime call here costs "
        f"{single:.0f} us per image for 1 image, {batch:.0f} us for {IMAGES_PER_REQUEST} and "
        f"{full:.0f} us for 256 (one thread per core, as cgan-serve's, measured in this run). "
        f"A request of {IMAGES_PER_REQUEST} digits "
        "already fills a call: coalescing such requests saves the per-call and per-handoff costs only, "
        "and the model's time per image stays. For requests of one digit, a call per request costs "
        f"{single / full:.1f}x the model time of a full batch, besides the handoffs, and batching pays.",
        "",
        "## The README's client snippet",
        "",
        "The snippet as the README has it, only the address changed, against each server that takes binary "
        "tensors, its images compared with the bundled model's for the same inputs:",
        "",
        *(f"- {name}: {snippets[name]}" for name in snippets if not snippets[name].startswith("not run")),
        "",
        "## Memory under a long load",
        "",
        *memory_lines(memory),
        "",
        "## The servers",
        "",
        *(
            f"- **{server.name}**: `{' '.join(shorten(part) for part in server.command)}`"
            + (f" ({server.note})" if server.note else "")
            for server in servers
        ),
        "",
    ]
    path.write_text("\n".join(lines))


def save_measurements(path: Path, results: dict, snippets: dict, memory: dict, model: dict) -> None:
    """The run's raw figures beside the peers' venvs, for a closer look than the report's."""
    loads = {
        name: {f"{kind} {clients}": vars(load) for (kind, clients), load in points.items()}
        for name, points in results.items()
    }
    path.write_text(
        json.dumps({"loads": loads, "snippets": snippets, "memory": memory, "model_us": model}, indent=1)
    )


def ratios(kind: str, results: dict) -> list[str]:
    batching, alone = results.get("cgan-serve, batching"), results.get("cgan-serve, no batching")
    if not batching or not alone or (kind, 64) not in batching:
        return []
    ratio = batching[(kind, 64)].requests_per_second / alone[(kind, 64)].requests_per_second
    return [f"Batching against none at 64 clients: {ratio:.2f}x the requests per second."]


def goals(results: dict) -> list[str]:
    batching, alone = results["cgan-serve, batching"], results["cgan-serve, no batching"]
    lines = []
    for kind in KINDS:
        ratio = batching[(kind, 64)].requests_per_second / alone[(kind, 64)].requests_per_second
        spread = batching[(kind, 8)].p99_ms / batching[(kind, 8)].p50_ms
        peers = [
            f"{name.split(',')[0]} {load[(kind, 64)].requests_per_second:,.0f}"
            for name, load in results.items()
            if not name.startswith("cgan-serve") and (kind, 64) in load
        ]
        ours = batching[(kind, 64)].requests_per_second
        ahead = f"; peers at 64 clients: {', '.join(peers)} req/s against {ours:,.0f}" if peers else ""
        lines.append(
            f"- {KINDS[kind]}: batching gives {ratio:.2f}x no batching at 64 clients (goal: 3x); p99 at 8 "
            f"clients is {spread:.2f}x p50 (goal: within 3x){ahead}."
        )
    return lines


def memory_lines(memory: dict) -> list[str]:
    samples = memory["samples"]
    if len(samples) < 4:
        return ["Too short a run to say."]
    times, sizes = np.array([t for t, _ in samples]), np.array([s for _, s in samples])
    later = times >= times[-1] / 2
    slope = np.polyfit(times[later], sizes[later], 1)[0] * 60
    return [
        f"cgan-serve (batching) under 64 clients on `/digits` for {memory['seconds']:g} s "
        f"({memory['requests']:,} requests), its resident memory every 5 s: {sizes[0]:.0f} MB at the "
        f"start, {sizes[min(6, len(sizes) - 1)]:.0f} MB after 30 s, {sizes.max():.0f} MB at most, "
        f"{sizes[-1]:.0f} MB at the end; "
        f"over the second half it changed by {slope:+.2f} MB a minute.",
    ]


def shorten(part: str) -> str:
    for prefix, name in ((str(REPO_ROOT) + "/", ""), (tempfile.gettempdir() + "/", "$TMP/")):
        if part.startswith(prefix) or f"={prefix}" in part:
            part = part.replace(prefix, name)
    return re.sub(r"\$TMP/bench-serve-\w+/", "", part)


if __name__ == "__main__":
    main()
