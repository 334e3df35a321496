"""cgan-run when the world moves under it: files that appear mid-run, two runs on one --out, runs
killed outright, signals, and closed or full streams. The output is never a clobbered or torn file."""

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import cgan_runtime.images
from cgan_runtime import cli
from cgan_runtime.files import atomic_path, remove_stale_temporaries
from tests.helpers import CGAN_RUN, cgan_run, default_stop_signals

pytestmark = pytest.mark.faults

LONG_RUN = ["--digit", "3", "--count", "1000000", "--out", "big.npy"]


def _started_writing(process: subprocess.Popen, folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not list(folder.glob(".big.npy.cgan-*.part")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    assert list(folder.glob(".big.npy.cgan-*.part")), "the run never started writing"


def test_a_file_created_while_the_run_works_is_kept_and_the_run_fails(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    real_tile = cgan_runtime.images.tile  # main imports it when it runs: patched in its module

    def user_saves_a_file_meanwhile(images, nrow):
        target.write_bytes(b"the user's own picture")
        return real_tile(images, nrow)

    monkeypatch.setattr(cgan_runtime.images, "tile", user_saves_a_file_meanwhile)
    result = CliRunner().invoke(cli.main, ["--digit", "1", "--out", str(target)])
    assert result.exit_code == 1
    assert f"{target} was created while this run worked; nothing written (add --force" in result.output
    assert target.read_bytes() == b"the user's own picture"
    assert [path.name for path in tmp_path.iterdir()] == ["x.png"]


def test_two_runs_on_one_output_leave_one_whole_file_and_one_clear_refusal(tmp_path):
    args = [CGAN_RUN, "--digit", "4", "--count", "20000", "--out", "same.npy"]
    runs = [
        subprocess.Popen(
            [*args, "--seed", str(seed)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    results = [(run.wait(timeout=300), run.stdout.read(), run.stderr.read()) for run in runs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 1], [0, 2]), results  # 2: the second saw the first's file before it began
    loser = next(stderr for code, _, stderr in results if code != 0)
    assert "same.npy exists; add --force" in loser or "was created while this run worked" in loser
    winner_seed = 1 + [code for code, _, _ in results].index(0)
    expected = subprocess.run(
        [*args[:-1], "expected.npy", "--seed", str(winner_seed)], cwd=tmp_path, capture_output=True
    ).returncode
    assert expected == 0
    assert (tmp_path / "same.npy").read_bytes() == (tmp_path / "expected.npy").read_bytes()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["expected.npy", "same.npy"]


@pytest.mark.parametrize(
    "stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=["SIGTERM", "SIGHUP", "SIGINT"]
)
def test_a_stop_signal_mid_write_leaves_no_file(tmp_path, stop):
    process = subprocess.Popen(
        [CGAN_RUN, *LONG_RUN],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_stop_signals,
    )
    _started_writing(process, tmp_path)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 128 + stop and "Aborted!" in stderr  # the shell's code for the signal
    assert "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_killed_run_leaves_a_temporary_file_that_the_next_run_removes(tmp_path):
    process = subprocess.Popen(
        [CGAN_RUN, *LONG_RUN], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _started_writing(process, tmp_path)
    process.kill()
    process.wait(timeout=60)
    assert len(list(tmp_path.glob(".big.npy.cgan-*.part"))) == 1  # SIGKILL cannot be cleaned up after
    result = cgan_run("--digit", "3", "--count", "2", "--out", "small.npy", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["small.npy"]


def test_a_temporary_file_whose_writer_still_runs_is_never_removed(tmp_path):
    with atomic_path(tmp_path / "busy.png") as busy:  # held (and locked) by a live writer
        stale = tmp_path / ".old.png.cgan-dead.part"
        stale.write_bytes(b"left by a killed run")
        assert remove_stale_temporaries(tmp_path) == [stale]
        assert busy.exists()
        busy.write_bytes(b"done")
    assert (tmp_path / "busy.png").read_bytes() == b"done"


def test_a_temporary_file_locked_by_another_process_is_never_removed(tmp_path):
    held = tmp_path / ".x.npy.cgan-live.part"
    held.write_bytes(b"in progress")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import fcntl, sys, time; f = open({str(held)!r}); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert remove_stale_temporaries(tmp_path) == []
        assert held.exists()
    finally:
        holder.kill()
        holder.wait()
    assert remove_stale_temporaries(tmp_path) == [held]  # its writer is gone now


def test_clean_up_leaves_files_that_are_not_its_own_temporaries(tmp_path):
    others = [".hidden.part", "x.cgan-1.part", ".notes.cgan-draft.txt", "download.part"]
    for name in others:
        (tmp_path / name).write_text("not ours")
    (tmp_path / ".link.cgan-x.part").symlink_to(tmp_path / "download.part")
    assert remove_stale_temporaries(tmp_path) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted([*others, ".link.cgan-x.part"])


def _closed_stderr() -> None:
    os.close(2)


@pytest.mark.parametrize("stderr", ["closed", "full", "reader gone"])
def test_a_closed_or_full_stderr_never_costs_the_output_file(tmp_path, stderr):
    """A run long enough for the progress bar, whose stderr cannot be written."""
    options = {
        "closed": {"preexec_fn": _closed_stderr},
        "full": {"stderr": open("/dev/full", "w")},  # noqa: SIM115 (closed with the process)
        "reader gone": {"stderr": subprocess.PIPE},
    }[stderr]
    process = subprocess.Popen(
        [CGAN_RUN, "--digit", "6", "--count", "30000", "--out", "many.npy"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
        **options,
    )
    if stderr == "reader gone":
        process.stderr.close()
    stdout, _ = process.communicate(timeout=300)
    assert process.returncode == 0
    assert stdout.strip() == "many.npy"
    assert np.load(tmp_path / "many.npy", mmap_mode="r").shape == (30000, 28, 28)


def test_a_closed_stdout_keeps_the_file(tmp_path):
    result = subprocess.run(
        [CGAN_RUN, "--digit", "2", "--count", "3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert (tmp_path / "digits_2.png").exists()


def test_a_full_stdout_keeps_the_file_and_says_the_path_was_not_printed(tmp_path):
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [CGAN_RUN, "--digit", "2", "--count", "3"],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr == "Error: wrote digits_2.png, but cannot print its path: No space left on device\n"
    assert (tmp_path / "digits_2.png").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["cgan-run", "--help"],
        ["cgan-run", "--version"],
        ["cgan-dataset", "--help"],
        ["cgan-serve", "--version"],
        ["cgan-train", "--help"],
        ["cgan-train", "train", "--help"],
    ],
    ids=" ".join,
)
def test_help_or_version_into_a_full_stdout_is_one_line(command, tmp_path):
    # click prints these itself, before any of the command's code runs.
    with open("/dev/full", "w") as full:
        result = subprocess.run(
            [str(Path(sys.executable).parent / command[0]), *command[1:]],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert result.returncode == 1
    assert result.stderr == "Error: cannot print: No space left on device\n"


@pytest.mark.parametrize(
    "command",
    [
        ["cgan-run", "--digit", "11"],
        ["cgan-dataset", "--per-digit", "0", "--out", "x"],
        ["cgan-train", "nothing"],
    ],
    ids=lambda command: command[0],
)
def test_a_mistake_with_stderr_closed_prints_nothing_on_stdout(command, tmp_path):
    # Python starts with sys.stderr None, and click then printed the usage error on stdout.
    result = subprocess.run(
        [str(Path(sys.executable).parent / command[0]), *command[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(2),
    )
    assert result.returncode == 2 and result.stdout == ""
    assert list(tmp_path.iterdir()) == []


def test_a_stdout_whose_reader_quit_keeps_the_file(tmp_path):
    process = subprocess.Popen(
        [CGAN_RUN, "--digit", "2", "--count", "3"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    process.stdout.close()
    stderr = process.stderr.read()
    process.wait(timeout=60)
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert (tmp_path / "digits_2.png").exists()


def test_the_lock_of_a_temporary_file_is_an_advisory_flock(tmp_path):
    """What the clean-up of another process relies on."""
    with atomic_path(tmp_path / "x.png") as temporary:
        handle = os.open(temporary, os.O_RDONLY)
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(handle)
        temporary.write_bytes(b"x")


def _ignore_sighup() -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def test_a_run_under_nohup_goes_on_when_the_terminal_closes(tmp_path):
    process = subprocess.Popen(
        [CGAN_RUN, *LONG_RUN],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sighup,
    )
    _started_writing(process, tmp_path)
    process.send_signal(signal.SIGHUP)
    time.sleep(1)
    assert process.poll() is None, "SIGHUP stopped a run that ignores it"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM


def test_without_hard_links_a_failed_publish_leaves_no_empty_claim(tmp_path, monkeypatch):
    import errno

    import cgan_runtime.files

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    def failing_rename(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(cgan_runtime.files.os, "link", no_links)
    monkeypatch.setattr(cgan_runtime.files.os, "replace", failing_rename)
    with (
        pytest.raises(OSError, match="Input/output error"),
        atomic_path(tmp_path / "x.png", replace=False) as path,
    ):
        path.write_bytes(b"picture")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_stop_signals_that_are_ignored_stay_ignored():
    """What nohup (and cgan-train's own handler) rely on: SIGHUP set to be ignored is left so."""
    from cgan_runtime.signals import handle_stop_signals, restore_handlers

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        replaced = handle_stop_signals(lambda number, frame: None)
        assert signal.SIGHUP not in replaced and signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        assert signal.SIGTERM in replaced
        restore_handlers(replaced)
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_long_name_in_multibyte_characters_is_written(tmp_path):
    name = "日" * 80 + ".png"  # 244 bytes in 84 characters: its temporary file's name is cut by bytes
    result = cgan_run("--digit", "3", "--count", "1", "--out", name, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert os.listdir(tmp_path) == [name]
