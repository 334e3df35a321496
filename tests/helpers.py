"""Helpers more than one test module uses (test modules do not import each other)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.conftest import REPO_ROOT


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def fresh_clone(destination: Path) -> Path:
    """A clone of this checkout as it would be committed: uncommitted changes and new files included."""
    git("clone", "--quiet", str(REPO_ROOT), str(destination), cwd=REPO_ROOT)
    tracked = git("ls-files", "-z", cwd=REPO_ROOT).split("\0")
    new = git("ls-files", "-z", "--others", "--exclude-standard", cwd=REPO_ROOT).split("\0")
    for name in filter(None, tracked + new):
        source, target = REPO_ROOT / name, destination / name
        if target.is_symlink() or target.exists():
            target.unlink()
        if source.is_symlink():
            target.symlink_to(source.readlink())
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git("add", "--all", cwd=destination)
    if git("status", "--porcelain", cwd=destination):
        git(
            "-c",
            "user.name=test",
            "-c",
            "user.email=test@localhost",
            "commit",
            "--quiet",
            "-m",
            "the working tree",
            cwd=destination,
        )
    return destination
