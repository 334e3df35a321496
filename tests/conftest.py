"""Shared fixtures: the small MNIST subset, one short training run and its export."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_DATA = REPO_ROOT / "tests" / "fixtures" / "mnist_subset"
# The model the runtime bundles (`make bundle`: the int8 model once it clears its bar, else fp32).
BUNDLED_MODEL = REPO_ROOT / "cgan_runtime" / "models" / "cgan_generator.onnx"
FP32_MODEL = REPO_ROOT / "models" / "cgan_generator.onnx"  # the fp32 export, proven equal to torch
INT8_MODEL = REPO_ROOT / "models" / "cgan_generator_int8.onnx"
COMMITTED_JUDGE = REPO_ROOT / "models" / "judge.pt"  # the primary judge
COMMITTED_JUDGES = REPO_ROOT / "models" / "judges.json"  # every judge, with its SHA-256
SMOKE_FLAGS = ["--epochs", "2", "--batch-size", "64", "--seed", "3", "--quiet"]


def export_untrained(config, path: Path) -> None:
    """Write an untrained generator of `config` (TrainConfig) as ONNX: any interface, in a second."""
    import onnx
    import torch

    from cgan_export.onnx_export import export_generator
    from cgan_train.models import build_generator

    provenance = {"git_commit": "test", "data_sha256": "test", "torch_version": "test", "epochs_done": 0}
    torch.manual_seed(0)
    onnx.save_model(export_generator(build_generator(config), config, provenance), path)


def train_cli(*args: str):
    """Run `cgan-train train ...` in-process; returns click's Result. The seed recipe (the small
    mlp design) unless args name another: the fixture runs test the loop, not the recipe."""
    from click.testing import CliRunner

    from cgan_train.cli import cli

    recipe = [] if "--recipe" in args else ["--recipe", "seed"]
    return CliRunner().invoke(cli, ["train", "--data-dir", str(FIXTURE_DATA), *recipe, *args])


def pytest_configure(config) -> None:
    """Under pytest-xdist (make test), each worker runs on its own share of the CPUs. Left alone,
    torch and onnxruntime in every worker (and in the commands the tests start) would each run a
    thread per core: workers x cores threads on the cores, which thrash."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if workers > len(cpus):
        return
    share = cpus[int(worker.removeprefix("gw")) :: workers]
    os.sched_setaffinity(0, share)  # inherited by the commands the tests start
    os.environ["OMP_NUM_THREADS"] = str(len(share))  # torch reads it when it starts


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A finished two-epoch run on the fixture: its folder holds checkpoint.pt and the grids."""
    run_dir = tmp_path_factory.mktemp("run")
    result = train_cli("--out", str(run_dir), *SMOKE_FLAGS)
    assert result.exit_code == 0, result.output
    return run_dir


@pytest.fixture(scope="session")
def exported_dir(trained_run, tmp_path_factory) -> Path:
    """models/-like folder shipped from trained_run by the export chain."""
    from cgan_export.ship import ship

    out_dir = tmp_path_factory.mktemp("models")
    ship(trained_run / "checkpoint.pt", out_dir)
    return out_dir


@pytest.fixture
def run_copy(trained_run, tmp_path) -> Path:
    """A private copy of trained_run, for tests that change it."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
