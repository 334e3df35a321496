"""Security basics: no network at run time, no shell, no code from model or checkpoint files."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cgan_train.checkpoint import CheckpointError, load_checkpoint
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.faults

PRODUCT_CODE = sorted(
    path for folder in ("cgan_runtime", "cgan_train", "export") for path in (REPO_ROOT / folder).rglob("*.py")
)

# Python with every way out to the network replaced by a failure, then cgan-run.
NO_NETWORK = """
import socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access attempted")
socket.socket = socket.create_connection = socket.getaddrinfo = refuse
from cgan_runtime.cli import main
sys.argv = ["cgan-run", *sys.argv[1:]]
main()
"""


def test_the_runtime_samples_with_the_network_unreachable(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            NO_NETWORK,
            "--digit",
            "4",
            "--count",
            "300",
            "--format",
            "npy",
            "--out",
            str(tmp_path / "fours.npy"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert np.load(tmp_path / "fours.npy").shape == (300, 28, 28)


def _calls(path: Path) -> list[ast.Call]:
    return [node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Call)]


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def test_every_torch_load_is_weights_only():
    loads = [(path, call) for path in PRODUCT_CODE for call in _calls(path) if _name(call) == "torch.load"]
    assert loads, "expected the checkpoint and judge loaders"
    for path, call in loads:
        keywords = {keyword.arg: ast.unparse(keyword.value) for keyword in call.keywords}
        assert keywords.get("weights_only") == "True", f"{path}: {ast.unparse(call)}"


def test_no_shell_and_no_code_from_data_in_the_product():
    for path in PRODUCT_CODE:
        for call in _calls(path):
            name = _name(call)
            assert name not in ("eval", "exec", "os.system", "os.popen", "pickle.load", "pickle.loads"), (
                f"{path}: {ast.unparse(call)}"
            )
            shell = [k for k in call.keywords if k.arg == "shell" and ast.unparse(k.value) != "False"]
            assert not shell, f"{path}: {ast.unparse(call)}"


class _Payload:
    def __reduce__(self):
        return (print, ("code from a checkpoint ran",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    torch.save({"config": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path / "evil.pt")
    assert "code from a checkpoint ran" not in capsys.readouterr().out
