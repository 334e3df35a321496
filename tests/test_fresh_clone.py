"""The newcomer's flow in a fresh clone: `make export` gives the committed files byte for byte, so
git sees no change, and `cgan-run` writes its digits where git does not look."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import BUNDLED_MODEL, REPO_ROOT
from tests.helpers import fresh_clone, git

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples

VENV = Path(sys.prefix)


def test_make_export_then_cgan_run_in_a_fresh_clone_leave_git_status_clean(tmp_path):
    clone = fresh_clone(tmp_path / "clone")
    # The clone's export writes into the clone, never into the repository the package was installed
    # from (an editable install imports cgan_export from there).
    ours = {path: path.read_bytes() for path in [BUNDLED_MODEL, *(REPO_ROOT / "models").glob("*.onnx")]}
    export = subprocess.run(
        ["make", "export", f"VENV={VENV}"], cwd=clone, capture_output=True, text=True, timeout=600
    )
    assert export.returncode == 0, export.stderr
    assert "wrote nothing: it already held this export" in export.stdout
    assert "already bundles models/cgan_generator_int8.onnx" in export.stdout
    assert all(path.read_bytes() == content for path, content in ours.items())
    run = subprocess.run(
        [str(VENV / "bin" / "cgan-run"), "--digit", "5", "--count", "16"],
        cwd=clone,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert (clone / "digits_5.png").exists()
    assert git("status", "--porcelain", cwd=clone) == ""
