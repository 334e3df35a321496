"""The edge install: the wheel alone, in a fresh environment without torch, offline."""

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUNDLED_MODEL, REPO_ROOT
from tests.helpers import build_wheel, fresh_clone, git

pytestmark = pytest.mark.slow  # training, a fresh clone or environment, or 10,000 samples

WHEELHOUSE = REPO_ROOT / ".wheelhouse"  # the runtime's dependencies, filled by `make install`


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, **kwargs
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def edge_env(wheel, tmp_path_factory) -> Path:
    """A new virtual environment holding only the wheel and its dependencies."""
    assert any(WHEELHOUSE.glob("onnxruntime-*.whl")), "no .wheelhouse: run `make install` first"
    env = tmp_path_factory.mktemp("edge") / "venv"
    venv.create(env, with_pip=True)
    install = run(
        env / "bin" / "python", "-m", "pip", "install", "--no-index", "--find-links", WHEELHOUSE, wheel
    )
    assert install.returncode == 0, install.stderr
    return env


def test_wheel_carries_the_bundled_model(wheel):
    with zipfile.ZipFile(wheel) as archive:
        bundled = archive.read("cgan_runtime/models/cgan_generator.onnx")
    assert bundled == BUNDLED_MODEL.read_bytes()


def test_wheel_carries_the_export_as_cgan_export(wheel):
    # cgan-train export runs from an installed wheel: export/ is packaged under its own name.
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert {"cgan_export/cli.py", "cgan_export/ship.py", "cgan_export/verify.py"} <= names
    assert not any(name.startswith("export/") for name in names)


def test_a_clone_without_symlinks_builds_a_wheel_with_the_real_model(tmp_path):
    # core.symlinks=false is Windows' default: a link in git would become a text file there.
    committed = fresh_clone(tmp_path / "committed")
    clone = tmp_path / "no-links"
    git("-c", "core.symlinks=false", "clone", "--quiet", str(committed), str(clone), cwd=tmp_path)
    dist = tmp_path / "dist"
    build = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", dist, clone
    )
    assert build.returncode == 0, build.stderr
    (built,) = dist.glob("cgan_runtime-*.whl")
    with zipfile.ZipFile(built) as archive:
        assert archive.read("cgan_runtime/models/cgan_generator.onnx") == BUNDLED_MODEL.read_bytes()
    assert BUNDLED_MODEL.stat().st_size > 1_000_000


def test_torch_is_not_importable_in_the_edge_environment(edge_env):
    result = run(edge_env / "bin" / "python", "-c", "import torch")
    assert result.returncode == 1
    assert "No module named 'torch'" in result.stderr


def test_cgan_run_works_from_the_wheel_alone(edge_env, tmp_path):
    result = run(
        edge_env / "bin" / "cgan-run",
        "--digit",
        "5",
        "--count",
        "16",
        "--seed",
        "0",
        "--format",
        "npy",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    images = np.load(tmp_path / result.stdout.strip())
    assert images.shape == (16, 28, 28) and images.dtype == np.uint8


def test_cgan_train_without_torch_says_what_to_install(edge_env):
    result = run(edge_env / "bin" / "cgan-train", "--help")
    assert result.returncode == 1
    assert "pip install 'cgan-runtime[train]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_cgan_serve_without_the_serve_extra_says_what_to_install(edge_env):
    result = run(edge_env / "bin" / "cgan-serve", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: cgan-serve needs the serve extra (fastapi, uvicorn, prometheus_client, orjson missing): "
        "pip install 'cgan-runtime[serve]'"
    )
