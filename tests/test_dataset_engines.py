"""The same set, byte for byte, whatever draws it: this process, local worker processes, Ray on a
Ray of its own, and Ray on a two-node cluster made on this machine; a worker that dies is replaced;
a stopped run resumes, keeping only the shards whose files still match their digests."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cgan_runtime import DigitGenerator
from cgan_runtime.dataset_engines import FAILPOINT, InProcess
from cgan_runtime.dataset_formats import shard_files
from cgan_runtime.dataset_plan import Plan
from cgan_runtime.datasets import (
    MANIFEST,
    SHARD_LOG,
    ResumeMismatch,
    logged_shards,
    unfinished_folder,
    write_dataset,
)
from tests.conftest import BUNDLED_MODEL
from tests.helpers import RAY_ENV, outward_listeners, short_ray_folder

CGAN_DATASET = str(Path(sys.executable).parent / "cgan-dataset")
SET = ["--per-digit", "30", "--test-per-digit", "4", "--shard-size", "70", "--seed", "5"]  # 6 shards
FORMATS = {"idx": "idx", "folder": "folder", "npz": "set.npz", "parquet": "parquet", "webdataset": "wds"}


def cgan_dataset(*args: str, cwd: Path, env: dict | None = None, timeout: float = 300):
    return subprocess.run(
        [CGAN_DATASET, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


def digests(path: Path) -> dict[str, str]:
    """Every file of a set (or the one file) by its path: what byte for byte means."""
    files = [path] if path.is_file() else sorted(item for item in path.rglob("*") if item.is_file())
    return {
        str(item.relative_to(path.parent)): hashlib.sha256(item.read_bytes()).hexdigest() for item in files
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Each format, drawn by this process."""
    folder = tmp_path_factory.mktemp("reference")
    for dataset_format, name in FORMATS.items():
        result = cgan_dataset(*SET, "--format", dataset_format, "--out", name, cwd=folder)
        assert result.returncode == 0, result.stderr
    return folder


def assert_same_sets(folder: Path, reference: Path, names) -> None:
    for name in names:
        assert digests(folder / name) == digests(reference / name), name
    assert [entry for entry in os.listdir(folder) if entry.startswith(".")] == []


@pytest.mark.parametrize("dataset_format", FORMATS)
def test_two_local_workers_write_the_same_bytes(reference, tmp_path, dataset_format):
    name = FORMATS[dataset_format]
    result = cgan_dataset(*SET, "--format", dataset_format, "--out", name, "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_same_sets(tmp_path, reference, [name])


@pytest.mark.faults
def test_a_local_worker_that_dies_is_replaced_and_the_set_is_the_same(reference, tmp_path):
    marker = tmp_path / "crashed"
    env = {**os.environ, FAILPOINT: f"crash-once:{marker}"}
    args = (*SET, "--format", "webdataset", "--out", "wds", "--workers", "2")
    result = cgan_dataset(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert marker.exists()  # a worker did die, halfway through a shard
    marker.unlink()
    assert_same_sets(tmp_path, reference, ["wds"])


@pytest.mark.faults
def test_a_full_disk_in_a_local_worker_is_one_line_and_keeps_the_finished_shards(reference, tmp_path):
    env = {**os.environ, FAILPOINT: "full-disk-after:3"}
    args = (*SET, "--format", "parquet", "--out", "parquet", "--workers", "2")
    result = cgan_dataset(*args, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot write parquet: No space left on device" in result.stderr
    kept = logged_shards(unfinished_folder(tmp_path / "parquet"))
    assert 1 <= len(kept) <= 4 and not (tmp_path / "parquet").exists()
    resumed = cgan_dataset(*args, "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_sets(tmp_path, reference, ["parquet"])


def test_stopping_a_worker_pool_leaves_no_thread_of_it_behind():
    # A pool's manager thread still closing its pipe as Python exits races the exit hook that writes
    # to that pipe: CI once printed its "Bad file descriptor" traceback after a full disk.
    import multiprocessing
    import threading
    import time
    from concurrent.futures import ProcessPoolExecutor

    from cgan_runtime.dataset_engines import _stop_pool

    before = set(threading.enumerate())
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver"))
    busy = [pool.submit(time.sleep, 60) for _ in range(3)]
    deadline = time.monotonic() + 30
    while not busy[0].running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert busy[0].running()
    _stop_pool(pool)
    assert set(threading.enumerate()) <= before


def test_a_format_without_its_package_is_one_line(monkeypatch):
    import importlib.util

    from click.testing import CliRunner

    from cgan_runtime.dataset_cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name, *a)
    )
    result = CliRunner().invoke(main, ["--per-digit", "1", "--format", "parquet", "--out", "x"])
    assert result.exit_code == 2
    assert "--format parquet needs pyarrow: pip install 'cgan-runtime[parquet]'" in result.output


class StopAfter:
    """An engine that draws some shards, then stops as Ctrl-C would."""

    def __init__(self, generator, shards: int):
        self.inner, self.shards = InProcess(generator), shards

    def run(self, job, shards):
        for drawn, result in enumerate(self.inner.run(job, shards)):
            if drawn == self.shards:
                raise KeyboardInterrupt
            yield result


@pytest.fixture(scope="module")
def generator() -> DigitGenerator:
    return DigitGenerator(BUNDLED_MODEL, device="cpu")


@pytest.mark.faults
@pytest.mark.parametrize("dataset_format", ["parquet", "npz"])
def test_resume_keeps_the_sound_shards_and_redraws_the_rest(generator, reference, tmp_path, dataset_format):
    name = FORMATS[dataset_format]
    arguments = {"per_digit": 30, "seed": 5, "test_per_digit": 4, "shard_size": 70}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(generator, tmp_path / name, dataset_format, engine=StopAfter(generator, 4), **arguments)
    unfinished = unfinished_folder(tmp_path / name)
    kept = logged_shards(unfinished)
    assert len(kept) == 4 and not (tmp_path / name).exists()
    plan = Plan({"train": 30, "test": 4}, 5, 10, 70)
    damaged = next(shard for shard in plan.shards() if shard.key in kept)  # a flipped byte: drawn again
    file = unfinished / shard_files(dataset_format, plan, damaged)[0]
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    file.write_bytes(bytes(data))
    counted = []
    write_dataset(
        generator, tmp_path / name, dataset_format, resume=True, progress=counted.append, **arguments
    )
    assert counted[0] == 3 * 70  # the three sound shards' images, counted as done at the start
    assert_same_sets(tmp_path, reference, [name])


@pytest.mark.faults
def test_resume_refuses_other_settings_and_a_fresh_run_starts_over(generator, reference, tmp_path):
    arguments = {"per_digit": 30, "test_per_digit": 4, "shard_size": 70}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(generator, tmp_path / "idx", "idx", seed=5, engine=StopAfter(generator, 2), **arguments)
    with pytest.raises(ResumeMismatch, match="made with seed 5, not 6"):
        write_dataset(generator, tmp_path / "idx", "idx", seed=6, resume=True, **arguments)
    write_dataset(generator, tmp_path / "idx", "idx", seed=5, **arguments)  # no --resume: from nothing
    assert_same_sets(tmp_path, reference, ["idx"])


@pytest.mark.faults
@pytest.mark.parametrize(
    "log",
    [
        '{"shard": "train-00001", "digest": "0000"}\n',  # a digest its files do not have
        '{"shard": "../../etc", "digest": "x"}\n{"shard": ["a"], "digest": 1}\nnot json\n[]\n',
        '{"shard": "train-00000", "dig',  # a line cut short by a crash
        '{"shard": ' + "[" * 100_000 + "]" * 100_000 + "}\n",  # deeper than json's recursion
    ],
    ids=["wrong digest", "crafted", "cut short", "nested too deep"],
)
def test_a_log_line_that_does_not_hold_keeps_no_shard(generator, reference, tmp_path, log):
    arguments = {"per_digit": 30, "seed": 5, "test_per_digit": 4, "shard_size": 70}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(generator, tmp_path / "idx", "idx", engine=StopAfter(generator, 2), **arguments)
    (unfinished_folder(tmp_path / "idx") / SHARD_LOG).write_text(log)
    counted = []
    write_dataset(generator, tmp_path / "idx", "idx", resume=True, progress=counted.append, **arguments)
    assert counted[0] == 0  # nothing kept: every shard drawn again
    assert_same_sets(tmp_path, reference, ["idx"])


@pytest.mark.faults
def test_a_manifest_nested_too_deep_is_a_mismatch_not_a_crash(generator, tmp_path):
    arguments = {"per_digit": 30, "seed": 5, "test_per_digit": 4, "shard_size": 70}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(generator, tmp_path / "idx", "idx", engine=StopAfter(generator, 2), **arguments)
    (unfinished_folder(tmp_path / "idx") / MANIFEST).write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ResumeMismatch, match="the unfinished set's manifest is unreadable"):
        write_dataset(generator, tmp_path / "idx", "idx", resume=True, **arguments)


@pytest.mark.faults
@pytest.mark.parametrize("planted", ["link", "hard link", "fifo"])
def test_a_resume_refuses_a_planted_link_or_fifo_and_a_fresh_run_clears_it(
    generator, reference, tmp_path, planted
):
    arguments = {"per_digit": 30, "seed": 5, "test_per_digit": 4, "shard_size": 70}
    with pytest.raises(KeyboardInterrupt):
        write_dataset(generator, tmp_path / "idx", "idx", engine=StopAfter(generator, 2), **arguments)
    folder, outside = unfinished_folder(tmp_path / "idx"), tmp_path / "outside"
    outside.mkdir()
    if planted == "link":  # a resume would follow it, writing and deleting outside the set
        (folder / "pieces").symlink_to(outside, target_is_directory=True)
    elif planted == "hard link":  # a shard drawn again would be written into the file outside
        (outside / "secret").write_text("secret")
        (folder / "pieces-file").hardlink_to(outside / "secret")
    else:  # reading the log would wait for a writer for ever
        (folder / SHARD_LOG).unlink()
        os.mkfifo(folder / SHARD_LOG)
    with pytest.raises(ResumeMismatch, match="holds a link or a special file"):
        write_dataset(generator, tmp_path / "idx", "idx", resume=True, **arguments)
    if planted == "fifo":
        assert logged_shards(folder) == {}  # at once: what the stop note on Ctrl-C reads
    write_dataset(generator, tmp_path / "idx", "idx", **arguments)  # no --resume: from nothing
    assert_same_sets(tmp_path, reference, ["idx"])
    assert [path.read_text() for path in outside.iterdir()] == (["secret"] if planted == "hard link" else [])


@pytest.mark.faults
def test_a_resume_with_another_seed_is_one_line(tmp_path):
    partial = cgan_dataset(*SET, "--out", "idx", cwd=tmp_path)
    assert partial.returncode == 0
    shutil.move(tmp_path / "idx", unfinished_folder(tmp_path / "idx"))  # as a stopped run leaves it
    manifest = unfinished_folder(tmp_path / "idx") / MANIFEST
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "complete": False}))
    result = cgan_dataset(*SET[:-1], "9", "--out", "idx", "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "made with seed 5, not 9" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def two_node_cluster():
    """A Ray cluster of two nodes (a head and a worker, one CPU each) on this machine's loopback,
    in a process of its own, and its address."""
    folder = short_ray_folder()
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(folder)}
    program = textwrap.dedent(
        """
        import sys
        from ray.cluster_utils import Cluster
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        print(cluster.address, flush=True)
        sys.stdin.read()  # until the test closes it
        cluster.shutdown()
        """
    )
    outward_before = outward_listeners()
    process = subprocess.Popen(
        [sys.executable, "-c", program], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    address = process.stdout.readline().strip()
    assert address, "the cluster did not start"
    yield address, env
    assert outward_listeners() - outward_before == set()  # every node on loopback
    process.stdin.close()
    process.wait(120)
    shutil.rmtree(folder, ignore_errors=True)


# Ray: slow (a cluster starts), on one worker (one cluster at a time on two cores).
@pytest.mark.slow
@pytest.mark.xdist_group("ray-dataset")
@pytest.mark.parametrize("dataset_format", ["idx", "parquet", "webdataset"])
def test_ray_on_a_two_node_cluster_writes_the_same_bytes(
    two_node_cluster, reference, tmp_path, dataset_format
):
    address, env = two_node_cluster
    name = FORMATS[dataset_format]
    args = (*SET, "--format", dataset_format, "--out", name, "--engine", "ray", "--ray-address", address)
    result = cgan_dataset(*args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert_same_sets(tmp_path, reference, [name])


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.xdist_group("ray-dataset")
def test_ray_of_its_own_replaces_an_actor_that_dies(reference, tmp_path):
    folder = short_ray_folder()
    marker = tmp_path / "crashed"
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(folder), FAILPOINT: f"crash-once:{marker}"}
    outward_before = outward_listeners()
    try:
        args = (*SET, "--format", "folder", "--out", "folder", "--engine", "ray", "--workers", "2")
        result = cgan_dataset(*args, cwd=tmp_path, env=env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert marker.exists()
    marker.unlink()
    assert_same_sets(tmp_path, reference, ["folder"])
    assert outward_listeners() - outward_before == set()


@pytest.mark.slow
@pytest.mark.faults
@pytest.mark.xdist_group("ray-dataset")
def test_an_error_in_a_ray_worker_is_one_line(tmp_path):
    folder = short_ray_folder()
    # A Ray of the run's own: its workers inherit this environment (a running cluster's do not).
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(folder), FAILPOINT: "full-disk-after:0"}
    try:
        result = cgan_dataset(
            *SET, "--format", "webdataset", "--out", "wds", "--engine", "ray", cwd=tmp_path, env=env
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    assert result.returncode == 1
    assert "Ray could not draw the set" in result.stderr and "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
