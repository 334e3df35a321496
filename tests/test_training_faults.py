"""Training faults: killed, interrupted, out of disk or diverging (export's refusals are in
test_export.py). Each gives a clear answer and loses nothing: the last checkpoint stays intact
and resumes exactly."""

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

import cgan_train.checkpoint
import cgan_train.train
from cgan_train.checkpoint import load_checkpoint
from tests.conftest import FIXTURE_DATA, train_cli
from tests.helpers import CGAN_TRAIN, default_stop_signals, same_training_state

pytestmark = [pytest.mark.faults, pytest.mark.slow]  # slow: training runs

# Small batches make an epoch of the fixture (38 steps) last long enough to be stopped in the middle.
BATCH_SIZE = 8
RUN_FLAGS = [
    "--data-dir",
    str(FIXTURE_DATA),
    "--recipe",
    "seed",
    "--design",
    "mlp",
    "--epochs",
    "2",
    "--batch-size",
    str(BATCH_SIZE),
    "--seed",
    "3",
    "--quiet",
]


def _train(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CGAN_TRAIN, "train", "--out", str(out), *RUN_FLAGS, *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stop_after_first_epoch(out: Path, stop: signal.Signals) -> subprocess.CompletedProcess:
    process = subprocess.Popen(
        [CGAN_TRAIN, "train", "--out", str(out), *RUN_FLAGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_stop_signals,
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:  # epoch 1 saved
        time.sleep(0.01)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("straight")
    assert _train(out).returncode == 0
    return load_checkpoint(out / "checkpoint.pt")


@pytest.mark.parametrize(
    "stop",
    [signal.SIGKILL, signal.SIGINT, signal.SIGTERM, signal.SIGHUP],
    ids=["SIGKILL", "SIGINT", "SIGTERM", "SIGHUP"],
)
def test_a_stopped_run_keeps_a_checkpoint_that_resumes_to_the_same_weights(tmp_path, straight_run, stop):
    stopped = _stop_after_first_epoch(tmp_path, stop)
    # The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM).
    assert stopped.returncode == (-signal.SIGKILL if stop == signal.SIGKILL else 128 + stop), stopped.stderr
    assert "Traceback" not in stopped.stderr
    if stop != signal.SIGKILL:
        assert "continue with --resume" in stopped.stderr
    kept = load_checkpoint(tmp_path / "checkpoint.pt")  # intact, whatever the moment of the signal
    assert 1 <= kept["epoch"] <= 2
    resumed = _train(tmp_path, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    finished = load_checkpoint(tmp_path / "checkpoint.pt")
    assert finished["epoch"] == 2 and len(finished["history"]) == 2
    assert same_training_state(finished, straight_run)


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_stop_signal_saves_the_epoch_it_stopped_in(tmp_path, stop):
    stopped = _stop_after_first_epoch(tmp_path, stop)
    assert stopped.returncode == 128 + stop, stopped.stderr
    kept = load_checkpoint(tmp_path / "checkpoint.pt")
    if "epoch_progress" in kept:  # stopped mid-epoch (the usual case): the steps done are kept
        steps = -(-300 // BATCH_SIZE)
        assert 0 < kept["epoch_progress"]["step"] < steps
        assert f"interrupted in epoch {kept['epoch'] + 1} after step" in stopped.stderr
    else:  # the signal landed between epochs
        assert f"interrupted after epoch {kept['epoch']}" in stopped.stderr


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save, saves = torch.save, []

    def save_then_fill_the_disk(state, handle):
        saves.append(state["epoch"])
        if len(saves) == 2:
            handle.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(state, handle)

    monkeypatch.setattr(cgan_train.checkpoint.torch, "save", save_then_fill_the_disk)
    result = train_cli("--out", str(tmp_path), "--epochs", "2", "--batch-size", "64", "--quiet")
    assert result.exit_code == 1
    assert f"Error: cannot write in {tmp_path}: No space left on device" in result.output
    monkeypatch.setattr(cgan_train.checkpoint.torch, "save", real_save)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 1
    assert not list(tmp_path.glob(".*.part"))


def test_a_loss_that_turns_nan_stops_the_run_with_a_message(tmp_path, monkeypatch):
    def nan_loss(config, on_real, on_fake, real_labels, fake_labels):
        return on_real.score.mean() * float("nan")

    monkeypatch.setattr(cgan_train.train, "discriminator_loss", nan_loss)
    result = train_cli("--out", str(tmp_path), "--epochs", "2", "--batch-size", "64", "--quiet")
    assert result.exit_code == 1
    assert "loss is not finite" in result.output and "lower the learning rate" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_huge_loss_weight_stops_the_run_with_a_message_that_names_the_weights(tmp_path):
    # Legal (finite, not negative), and the wrong-label term it scales overflows at the first step: the
    # hint must point at the weights too, not only at the learning rate.
    result = train_cli(
        "--out",
        str(tmp_path),
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--mismatch-weight",
        "1e308",
        "--quiet",
    )
    assert result.exit_code == 1
    assert "loss is not finite" in result.output and "the loss terms' weights" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "checkpoint.pt").exists()


def test_a_closed_stderr_never_stops_training(tmp_path):
    result = subprocess.run(
        [CGAN_TRAIN, "train", "--out", str(tmp_path), *RUN_FLAGS[:-1]],  # with its bar
        capture_output=False,
        stdout=subprocess.PIPE,
        text=True,
        timeout=300,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 0
    assert result.stdout.strip() == str(tmp_path / "checkpoint.pt")
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2


def test_a_full_stdout_keeps_the_checkpoint_and_says_its_path_was_not_printed(tmp_path):
    flags = [
        "--data-dir",
        str(FIXTURE_DATA),
        "--recipe",
        "seed",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--quiet",
    ]
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [CGAN_TRAIN, "train", "--out", str(tmp_path), *flags],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    checkpoint = tmp_path / "checkpoint.pt"
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"Error: saved {checkpoint}, but cannot print its path: No space left on device\n"
    )
    assert load_checkpoint(checkpoint)["epoch"] == 1


def test_a_second_training_into_a_folder_in_use_is_refused_until_the_first_stops(tmp_path):
    long_run = [flag if flag != "2" else "40" for flag in RUN_FLAGS]  # --epochs 40: still running
    first = subprocess.Popen(
        [CGAN_TRAIN, "train", "--out", str(tmp_path), *long_run],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "checkpoint.pt").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        for extra in (["--resume"], []):  # a resume, and a new run before it sees the checkpoint
            second = _train(tmp_path, *extra)
            assert second.returncode == 1
            assert second.stderr == (
                f"Error: {tmp_path} is in use by another training: wait for it to finish, or stop it first\n"
            )
        assert first.poll() is None  # the refusals did not disturb it
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    stopped_at = load_checkpoint(tmp_path / "checkpoint.pt")["epoch"]
    resumed = _train(tmp_path, "--resume", "--epochs", str(stopped_at + 1))
    assert resumed.returncode == 0, resumed.stderr
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == stopped_at + 1


def test_a_new_run_that_fails_before_training_leaves_no_folder(tmp_path):
    out = tmp_path / "runs" / "new"
    result = _train(out, "--data-dir", str(tmp_path / "no-such-folder"))
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert not out.exists()
