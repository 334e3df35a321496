"""What the runtime says of the device, for the failures this CPU machine cannot produce itself: a
CUDA provider that raises at session creation (a driver or device present but unusable), and the
words onnxruntime logs when its CUDA library does not load (its real log: test_device_gpu_package)."""

from __future__ import annotations

import onnxruntime
import pytest
from click.testing import CliRunner

from cgan_runtime import DeviceError, DigitGenerator, cli, providers

# What onnxruntime-gpu 1.31.1 logged here (abridged paths) when its CUDA libraries were missing.
LOG_OF_A_MISSING_LIBRARY = (
    "2026-12-03 07:10:00.1 [E:onnxruntime:Default, provider_bridge_ort.cc:2251 TryGetProviderInfo_CUDA] "
    "provider_bridge_ort.cc:1844 onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() "
    "[ONNXRuntimeError] : 1 : FAIL : Failed to load library libonnxruntime_providers_cuda.so with error: "
    "libcublasLt.so.13: cannot open shared object file: No such file or directory\n"
    "2026-12-03 07:10:00.2 [W:onnxruntime:Default, onnxruntime_pybind_state.cc:1013 "
    "CreateExecutionProviderInstance] Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*"
)
NO_DEVICE = "CUDA failure 100: no CUDA-capable device is detected ; GPU=0 ; hostname=x"


@pytest.fixture
def cuda_that_raises(monkeypatch):
    """onnxruntime as onnxruntime-gpu on a machine whose driver finds no device."""
    real_session = onnxruntime.InferenceSession

    def session(path, sess_options=None, providers=None):
        if providers and providers[0] == "CUDAExecutionProvider":
            raise RuntimeError(NO_DEVICE)
        return real_session(path, sess_options=sess_options, providers=providers)

    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    monkeypatch.setattr(onnxruntime, "InferenceSession", session)


def test_auto_falls_back_to_the_cpu_and_keeps_the_reason(cuda_that_raises):
    report = DigitGenerator(device="auto").info.device
    assert (report.requested, report.provider) == ("auto", "CPUExecutionProvider")
    assert report.fallback_reason == NO_DEVICE
    assert report.line() == f"device auto: CPUExecutionProvider (CUDA did not load: {NO_DEVICE})"


def test_cuda_that_raises_is_a_device_error_not_a_bad_model(cuda_that_raises):
    with pytest.raises(DeviceError, match="CUDA provider fails \\(CUDA failure 100"):
        DigitGenerator(device="cuda")


def test_cgan_run_says_it_in_one_line_and_exits_1(cuda_that_raises, tmp_path):
    result = CliRunner().invoke(
        cli.main, ["--digit", "1", "--device", "cuda", "--out", str(tmp_path / "x.png")]
    )
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: --device cuda: onnxruntime's CUDA provider fails ({NO_DEVICE}); use --device cpu"
    ]
    auto = CliRunner().invoke(cli.main, ["--digit", "1", "--out", str(tmp_path / "y.png")])
    assert auto.exit_code == 0
    assert auto.stderr.strip().splitlines() == [
        f"device auto: CPUExecutionProvider (CUDA did not load: {NO_DEVICE})"
    ]


def test_cpu_asks_nothing_of_cuda(cuda_that_raises):
    report = DigitGenerator(device="cpu").info.device
    assert report == providers.DeviceReport("cpu", "CPUExecutionProvider")


@pytest.mark.parametrize(
    "log, reason",
    [
        (
            LOG_OF_A_MISSING_LIBRARY,
            "libcublasLt.so.13: cannot open shared object file: No such file or directory",
        ),
        (
            "[W:onnxruntime:Default] Failed to create CUDAExecutionProvider. Require cuDNN 9.* and CUDA 13.*",
            "Require cuDNN 9.* and CUDA 13.*",
        ),
        ("something else entirely\nsecond line", "something else entirely"),
        ("", None),
    ],
)
def test_onnxruntimes_log_becomes_its_reason(log, reason):
    assert providers._load_failure(log) == reason


def test_the_log_of_session_creation_is_caught_off_file_descriptor_2(capfd):
    import os

    with providers._stderr_caught() as caught:
        os.write(2, b"[E:onnxruntime] Failed to load library x.so with error: y.so: missing\n")
    assert "".join(caught).startswith("[E:onnxruntime]")
    assert capfd.readouterr().err == ""
