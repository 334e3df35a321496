"""What a benchmark report is stamped with: the commit measured and the CPU it ran on."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The short hash of HEAD, with +dirty when the tree has uncommitted changes to tracked files."""
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (head or "unknown") + ("+dirty" if dirty else "")


def cpu_name() -> str:
    """The CPU's model name, and whether it has VNNI (onnxruntime's int8 kernels depend on it)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            vnni = "avx512_vnni" in cpuinfo or "avx_vnni" in cpuinfo
            return f"{line.split(':', 1)[1].strip()}, {'with' if vnni else 'without'} VNNI"
    return platform.machine()
