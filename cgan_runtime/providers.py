"""Execution providers: which device an onnxruntime session really runs on, and why.

onnxruntime-gpu lists the CUDA provider whether or not this machine can run it, and when the
provider fails to load (CUDA or cuDNN libraries missing, no driver) it falls back to the CPU with
a few lines of its own log on stderr and no error. So the session's providers are read after
creation, onnxruntime's log lines are caught, and what happened is said in one line.
"""

from __future__ import annotations

import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")
ERROR_SEVERITY = 3  # onnxruntime's logger: errors only, no warnings on the user's terminal
FATAL_SEVERITY = 4
GPU_DISTRIBUTION = "onnxruntime-gpu"
SWAP = f"pip uninstall -y onnxruntime {GPU_DISTRIBUTION} && pip install {GPU_DISTRIBUTION}"


class DeviceError(Exception):
    """The requested device cannot be used."""


@dataclass(frozen=True)
class DeviceReport:
    """The device asked for, the provider that really runs the model, and, when CUDA was asked for
    (or was on offer to auto) but is not what runs, the reason in one line."""

    requested: str
    provider: str
    fallback_reason: str | None = None

    def line(self) -> str:
        """One line for a person: 'device auto: CPUExecutionProvider (CUDA did not load: ...)'."""
        reason = f" (CUDA did not load: {self.fallback_reason})" if self.fallback_reason else ""
        return f"device {self.requested}: {self.provider}{reason}"

    def as_labels(self) -> dict[str, str]:
        """The report as metadata or metric labels."""
        return {"requested_device": self.requested, "execution_provider": self.provider}


def create_session(model_path: Path, device: str, one_shot: bool = False, threads: int | None = None):
    """(InferenceSession, DeviceReport) on the device asked for: auto (CUDA if it really loads,
    else CPU), cpu, or cuda (DeviceError unless CUDA really runs).

    Settings chosen by measurement (`make bench`): one intra-op thread per physical core this
    process may use (faster than one thread; hyper-threads would share a core's arithmetic units),
    and for one_shot (a run of a single onnxruntime call) worker threads that sleep instead of
    spinning: spinning speeds up repeated calls; for one call it gains nothing measurable and
    would keep a core busy.
    """
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    try:
        import onnxruntime
    except ImportError as error:
        raise DeviceError(
            f"onnxruntime does not import ({error}); pip install --force-reinstall onnxruntime "
            f"(or {GPU_DISTRIBUTION})"
        ) from None
    if not hasattr(onnxruntime, "InferenceSession"):  # what uninstalling one of two packages leaves
        raise DeviceError(
            f"the installed onnxruntime is broken (no InferenceSession): onnxruntime and {GPU_DISTRIBUTION} "
            "share one folder, and removing one removes it; pip install --force-reinstall onnxruntime "
            f"(or {GPU_DISTRIBUTION})"
        )
    cuda_built_in = CUDA in onnxruntime.get_available_providers()
    if device == "cuda" and not cuda_built_in:
        raise DeviceError(f"--device cuda: {_no_cuda_provider()}")
    options = onnxruntime.SessionOptions()
    options.log_severity_level = ERROR_SEVERITY
    # The int8 model needs EXTENDED to fuse its quantize/dequantize pairs into integer kernels
    # (about 4x BASIC), and ALL adds their channels-last layout (about 1.3x more): `make bench`.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or physical_cores()
    if one_shot:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

    def session(providers: list[str]):
        return onnxruntime.InferenceSession(str(model_path), sess_options=options, providers=providers)

    if not cuda_built_in or device == "cpu":
        created = session([CPU])
        return created, DeviceReport(device, created.get_providers()[0])
    try:
        with _stderr_caught() as log:
            created = session([CUDA, CPU])
    except RuntimeError as error:  # a driver or device present but unusable: "CUDA failure 100: ..."
        reason = _first_line(str(error))
        if not _is_cuda_failure(reason):
            raise
        if device == "cuda":
            raise DeviceError(
                f"--device cuda: onnxruntime's CUDA provider fails ({reason}); use --device cpu"
            ) from error
        created = session([CPU])
        return created, DeviceReport(device, created.get_providers()[0], reason)
    provider = created.get_providers()[0]
    if provider == CUDA:
        return created, DeviceReport(device, provider)
    reason = _load_failure("".join(log)) or "onnxruntime gave no reason"
    if device == "cuda":
        raise DeviceError(
            f"--device cuda: onnxruntime's CUDA provider did not load ({reason}); install the CUDA and "
            "cuDNN libraries onnxruntime-gpu needs (pip install 'onnxruntime-gpu[cuda,cudnn]', and an "
            "NVIDIA driver), or use --device cpu"
        )
    return created, DeviceReport(device, provider, reason)


def describe_onnxruntime() -> dict[str, str]:
    """What `cgan-run --info` prints of onnxruntime: its version, the package it came from, and the
    providers it was built with (a list of the build's, not of what this machine can run)."""
    import onnxruntime

    return {
        "onnxruntime": getattr(onnxruntime, "__version__", "unknown"),
        "package": ", ".join(_installed_onnxruntime_packages()) or "unknown",
        "built-in providers": ", ".join(onnxruntime.get_available_providers()),
    }


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


def _no_cuda_provider() -> str:
    packages = _installed_onnxruntime_packages()
    if GPU_DISTRIBUTION in packages and "onnxruntime" in packages:
        return (
            f"this onnxruntime has no CUDA provider: both onnxruntime and {GPU_DISTRIBUTION} are "
            f"installed, and the CPU one, installed last, overwrote the other; {SWAP}"
        )
    return (
        f"this onnxruntime has no CUDA provider; replace it with {GPU_DISTRIBUTION} "
        f"(pip uninstall onnxruntime && pip install {GPU_DISTRIBUTION}) or use --device cpu"
    )


def _installed_onnxruntime_packages() -> list[str]:
    """The distributions installed that provide the onnxruntime module (the two overwrite each other)."""
    from importlib.metadata import PackageNotFoundError, distribution

    found = []
    for name in ("onnxruntime", GPU_DISTRIBUTION):
        try:
            distribution(name)
        except PackageNotFoundError:
            continue
        found.append(name)
    return found


# onnxruntime's own words when the CUDA provider's library fails to load, and when the provider
# cannot be created; the text after them is the reason.
_LOAD_ERROR = re.compile(r"Failed to load library \S+ with error: (?P<reason>.+)")
_CREATE_ERROR = re.compile(r"Failed to create CUDAExecutionProvider\.?\s*(?P<reason>.*)")


def _load_failure(log: str) -> str | None:
    for pattern in (_LOAD_ERROR, _CREATE_ERROR):
        match = pattern.search(log)
        if match:
            return match.group("reason").strip() or match.group(0).strip()
    return _first_line(log) or None


def _is_cuda_failure(reason: str) -> bool:
    return "CUDA" in reason or "cuda" in reason or "cuDNN" in reason


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


@contextmanager
def _stderr_caught():
    """onnxruntime's C++ log goes to file descriptor 2, past Python's sys.stderr: point that
    descriptor at a temporary file while a session is made; the list yielded holds what was written
    once the block ends. With descriptor 2 closed nothing is caught (nor would it have been shown)."""
    caught: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield caught
        return
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield caught
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            caught.append(log.read().decode(errors="replace"))


def quiet_run_options():
    """Options for session.run: its failures are raised, and the runtime's error names them, so
    onnxruntime's own log of the same failure would be a second line, in colour, on the terminal."""
    import onnxruntime

    options = onnxruntime.RunOptions()
    options.log_severity_level = FATAL_SEVERITY
    return options
