"""Execution providers: which device an onnxruntime session really runs on."""

from __future__ import annotations

import os
from pathlib import Path

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
ERROR_SEVERITY = 3  # onnxruntime's logger: errors only, no warnings on the user's terminal


class DeviceError(Exception):
    """The requested device cannot be used."""


def create_session(model_path: Path, device: str, one_shot: bool = False):
    """An InferenceSession on the device asked for: auto (CUDA if it really loads, else CPU), cpu or cuda.

    onnxruntime falls back to the CPU without a word when the CUDA provider fails to load
    (missing CUDA or cuDNN libraries), so the providers in use are checked after creation.
    Settings chosen by measurement (`make bench`): one intra-op thread per physical core this
    process may use (faster than one thread; hyper-threads would share a core's arithmetic units),
    and for one_shot (a run of a single onnxruntime call) worker threads that sleep instead of
    spinning: spinning speeds up repeated calls; for one call it gains nothing measurable and
    would keep a core busy.
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
    # The int8 model needs EXTENDED to fuse its quantize/dequantize pairs into integer kernels
    # (about 4x BASIC), and ALL adds their channels-last layout (about 1.3x more): `make bench`.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = physical_cores()
    if one_shot:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=wanted)
    if device == "cuda" and session.get_providers()[0] != CUDA:
        raise DeviceError(
            "--device cuda: onnxruntime's CUDA provider failed to load (are the CUDA and cuDNN "
            "libraries that onnxruntime-gpu needs installed?); use --device cpu"
        )
    return session


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads of a core count once)."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:  # no topology (not Linux, or hidden): count the CPU as a core
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))
