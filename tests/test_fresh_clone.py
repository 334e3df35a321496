"""The newcomer's flow in a fresh clone: `make export` gives the committed files byte for byte, so
git sees no change, and `cgan-run` writes its digits where git does not look."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT

VENV = Path(sys.prefix)


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _fresh_clone(destination: Path) -> Path:
    """A clone of this checkout as it would be committed: uncommitted changes and new files included."""
    _git("clone", "--quiet", str(REPO_ROOT), str(destination), cwd=REPO_ROOT)
    tracked = _git("ls-files", "-z", cwd=REPO_ROOT).split("\0")
    new = _git("ls-files", "-z", "--others", "--exclude-standard", cwd=REPO_ROOT).split("\0")
    for name in filter(None, tracked + new):
        source, target = REPO_ROOT / name, destination / name
        if target.is_symlink() or target.exists():
            target.unlink()
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    _git("add", "--all", cwd=destination)
    if _git("status", "--porcelain", cwd=destination):
        _git("-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet",
             "-m", "the working tree", cwd=destination)
    return destination


def test_make_export_then_cgan_run_in_a_fresh_clone_leave_git_status_clean(tmp_path):
    clone = _fresh_clone(tmp_path / "clone")
    export = subprocess.run(["make", "export", f"VENV={VENV}"], cwd=clone, capture_output=True, text=True,
                            timeout=600)
    assert export.returncode == 0, export.stderr
    assert "wrote nothing: it already held this export" in export.stdout
    run = subprocess.run([str(VENV / "bin" / "cgan-run"), "--digit", "5", "--count", "16"], cwd=clone,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (clone / "digits_5.png").exists()
    assert _git("status", "--porcelain", cwd=clone) == ""
