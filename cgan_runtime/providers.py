"""Execution providers: which device an onnxruntime session really runs on."""

from __future__ import annotations

from pathlib import Path

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
ERROR_SEVERITY = 3  # onnxruntime's logger: errors only, no warnings on the user's terminal


class DeviceError(Exception):
    """The requested device cannot be used."""


def create_session(model_path: Path, device: str):
    """An InferenceSession on the device asked for: auto (CUDA if it really loads, else CPU), cpu or cuda.

    onnxruntime falls back to the CPU without a word when the CUDA provider fails to load
    (missing CUDA or cuDNN libraries), so the providers in use are checked after creation.
    """
    import onnxruntime

    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    cuda_built_in = CUDA in onnxruntime.get_available_providers()
    if device == "cuda" and not cuda_built_in:
        raise DeviceError(
            "--device cuda: this onnxruntime has no CUDA provider; replace it with onnxruntime-gpu "
            "(pip uninstall onnxruntime && pip install onnxruntime-gpu) or use --device cpu"
        )
    wanted = [CUDA, CPU] if device == "cuda" or (device == "auto" and cuda_built_in) else [CPU]
    options = onnxruntime.SessionOptions()
    options.log_severity_level = ERROR_SEVERITY
    session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=wanted)
    if device == "cuda" and session.get_providers()[0] != CUDA:
        raise DeviceError(
            "--device cuda: onnxruntime's CUDA provider failed to load (are the CUDA and cuDNN "
            "libraries that onnxruntime-gpu needs installed?); use --device cpu"
        )
    return session
