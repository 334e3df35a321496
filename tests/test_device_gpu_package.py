"""--device on a machine without a GPU, with onnxruntime-gpu installed as the docs say (in place of
onnxruntime): onnxruntime lists the CUDA provider, then falls back to the CPU with a few lines of
its own log. The runtime and the server must say what really runs, in one line, and --device cuda
must fail."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.helpers import RunningServer, build_wheel

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("gpu-package")]  # one venv, its tests in order
WHEELHOUSE = REPO_ROOT / ".wheelhouse"  # filled by `make install`, onnxruntime-gpu included
MISSING_LIBRARY = "cannot open shared object file"  # what the CUDA provider's libraries give here


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def gpu_env(tmp_path_factory) -> Path:
    """A venv with the runtime and the server, then onnxruntime swapped for onnxruntime-gpu."""
    assert any(WHEELHOUSE.glob("onnxruntime_gpu-*.whl")), (
        "no onnxruntime-gpu in .wheelhouse: run `make install`"
    )
    wheel = build_wheel(tmp_path_factory.mktemp("dist"))
    env = tmp_path_factory.mktemp("gpu") / "venv"
    venv.create(env, with_pip=True)
    pip = [env / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", WHEELHOUSE]
    for step in (
        [*pip, f"{wheel}[serve]"],
        [env / "bin" / "python", "-m", "pip", "uninstall", "-y", "onnxruntime"],
        [*pip, "onnxruntime-gpu"],
    ):
        result = run(*step)
        assert result.returncode == 0, result.stderr
    return env


def test_onnxruntime_gpu_lists_cuda_on_a_machine_without_one(gpu_env):
    result = run(
        gpu_env / "bin" / "python", "-c", "import onnxruntime; print(onnxruntime.get_available_providers())"
    )
    assert "CUDAExecutionProvider" in result.stdout


def test_device_cuda_fails_in_one_line_naming_onnxruntimes_reason(gpu_env, tmp_path):
    result = run(gpu_env / "bin" / "cgan-run", "--digit", "5", "--device", "cuda", cwd=tmp_path)
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()  # onnxruntime's own log lines caught, not shown
    assert line.startswith("Error: --device cuda: onnxruntime's CUDA provider did not load (")
    assert MISSING_LIBRARY in line and "or use --device cpu" in line
    assert list(tmp_path.iterdir()) == []


def test_device_auto_runs_on_the_cpu_and_says_so_in_one_line(gpu_env, tmp_path):
    result = run(gpu_env / "bin" / "cgan-run", "--digit", "5", "--seed", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert (
        line.startswith("device auto: CPUExecutionProvider (CUDA did not load: ") and MISSING_LIBRARY in line
    )
    cpu = run(
        Path(sys.executable).parent / "cgan-run",
        "--digit",
        "5",
        "--seed",
        "0",
        "--out",
        "cpu.png",
        cwd=tmp_path,
    )
    assert cpu.returncode == 0, cpu.stderr
    assert (tmp_path / "digits_5.png").read_bytes() == (tmp_path / "cpu.png").read_bytes()


def test_info_and_the_library_report_the_requested_and_the_actual_provider(gpu_env):
    info = run(gpu_env / "bin" / "cgan-run", "--info")
    assert info.returncode == 0, info.stderr
    assert "package: onnxruntime-gpu" in info.stdout
    assert (
        "device requested: auto\nexecution provider: CPUExecutionProvider\nCUDA did not load: " in info.stdout
    )
    program = (
        "from cgan_runtime import DigitGenerator\n"
        "device = DigitGenerator().info.device\n"
        "print(device.requested, device.provider, device.fallback_reason)\n"
    )
    library = run(gpu_env / "bin" / "python", "-c", program)
    assert library.returncode == 0, library.stderr
    assert library.stdout.startswith("auto CPUExecutionProvider ") and MISSING_LIBRARY in library.stdout
    assert library.stderr == ""  # the library says it in info, not on the terminal


def test_the_server_reports_the_provider_in_its_metadata_and_metrics(gpu_env):
    server = RunningServer("--port", "0", command=gpu_env / "bin" / "cgan-serve")
    try:
        with urllib.request.urlopen(f"http://{server.url}/v2/models/cgan", timeout=30) as response:
            parameters = json.load(response)["parameters"]
        with urllib.request.urlopen(f"http://{server.url}/metrics", timeout=30) as response:
            metrics = response.read().decode()
    finally:
        code, stderr = server.stop()
    assert parameters["requested_device"] == "auto"
    assert parameters["execution_provider"] == "CPUExecutionProvider"
    assert (
        'cgan_device_info{execution_provider="CPUExecutionProvider",requested_device="auto"} 1.0' in metrics
    )
    assert "on CPUExecutionProvider" in server.first_line
    assert code == 0 and stderr.splitlines()[0].startswith(
        "device auto: CPUExecutionProvider (CUDA did not load"
    )


def test_the_server_with_device_cuda_fails_at_start_in_one_line(gpu_env):
    result = run(gpu_env / "bin" / "cgan-serve", "--device", "cuda", "--port", "0")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: --device cuda: onnxruntime's CUDA provider did not load")


def test_the_cpu_package_installed_over_it_is_named(gpu_env):
    # The trap the docs warn of: onnxruntime installed after onnxruntime-gpu overwrites its files.
    reinstall = run(
        gpu_env / "bin" / "python",
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        WHEELHOUSE,
        "--no-deps",
        "--force-reinstall",
        "onnxruntime",
    )
    assert reinstall.returncode == 0, reinstall.stderr
    result = run(gpu_env / "bin" / "cgan-run", "--digit", "5", "--device", "cuda")
    assert result.returncode == 1
    assert (
        "both onnxruntime and onnxruntime-gpu are installed, and the CPU one, installed last, overwrote"
        in result.stderr
    )
    uninstall = run(gpu_env / "bin" / "python", "-m", "pip", "uninstall", "-y", "onnxruntime")
    assert uninstall.returncode == 0
    broken = run(gpu_env / "bin" / "cgan-run", "--digit", "5")
    assert broken.returncode == 1 and "Traceback" not in broken.stderr
    assert (
        "the installed onnxruntime is broken" in broken.stderr
        or "onnxruntime does not import" in broken.stderr
    )
