"""What the distribution says about itself: its version everywhere, its licence, its build needs."""

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
import tomllib

import cgan_runtime
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["cgan-run", "cgan-dataset", "cgan-train"])
def test_every_command_says_the_distributions_version(command):
    result = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{command}, version {version('cgan-runtime')}"
    assert cgan_runtime.__version__ == version("cgan-runtime")


def test_the_build_requires_the_setuptools_that_reads_the_licence_as_written():
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)  # PEP 639: setuptools 77 or later
    requirement = next(r for r in project["build-system"]["requires"] if r.startswith("setuptools"))
    assert requirement == "setuptools>=77"
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License")


def test_the_export_is_an_installed_cgan_train_command():
    listing = subprocess.run([str(BIN / "cgan-train"), "--help"], capture_output=True, text=True, timeout=60)
    assert "export " in listing.stdout
    usage = subprocess.run(
        [str(BIN / "cgan-train"), "export", "--help"], capture_output=True, text=True, timeout=60
    )
    assert usage.returncode == 0, usage.stderr
    assert "--checkpoint" in usage.stdout and "--out-dir" in usage.stdout
