"""The export's output folder changes as one set: whatever stops the publishing (a full disk, a
failed rename, a signal, something in the way), the previous files are there exactly as they were."""

import errno
import os
import signal
import stat
from contextlib import contextmanager
from pathlib import Path

import pytest

import cgan_export.file_set
from cgan_export.file_set import FileSetError, StoppedAfterTheSet, publish_set
from tests.helpers import CGAN_TRAIN

pytestmark = pytest.mark.faults

NEW_SET = {"a.onnx": b"new a", "b.onnx": b"new b", "c.md": b"new c"}


@pytest.fixture
def previous_set(tmp_path) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in NEW_SET:
        (folder / name).write_bytes(b"previous " + name.encode())
    (folder / "unrelated.txt").write_bytes(b"someone else's")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry of the folder, hidden temporary files included: its bytes and permissions."""
    return {path.name: (path.read_bytes(), stat.S_IMODE(path.stat().st_mode)) for path in folder.iterdir()}


def _contents(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@contextmanager
def _sigterm_raises_keyboard_interrupt():
    """SIGTERM as cgan's commands take it (stop_like_ctrl_c), whatever handler the worker has."""

    def stop(number, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _fail_on_call(number: int, error: BaseException, real, after: bool = False):
    """real, except that its call `number` raises error: instead of doing its work, or after it."""
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) != number:
            return real(*args, **kwargs)
        if after:
            real(*args, **kwargs)
        raise error

    return failing


def test_a_new_set_replaces_the_previous_one_and_nothing_else(previous_set):
    assert publish_set(previous_set, NEW_SET) == list(NEW_SET)
    assert _contents(previous_set) == {**NEW_SET, "unrelated.txt": b"someone else's"}


def test_a_full_disk_while_writing_leaves_the_previous_set(previous_set, monkeypatch):
    before = _snapshot(previous_set)
    monkeypatch.setattr(
        cgan_export.file_set.os,
        "fsync",
        _fail_on_call(3, OSError(errno.ENOSPC, "No space left on device"), os.fsync),
    )
    with pytest.raises(OSError, match="No space left on device") as raised:
        publish_set(previous_set, NEW_SET)
    assert raised.value.filename == str(previous_set / "c.md")  # the file it was for, not a temporary name
    assert _snapshot(previous_set) == before


@pytest.mark.parametrize(
    "stop, after",
    [
        (OSError(errno.EIO, "Input/output error"), False),
        (KeyboardInterrupt(), False),
        (KeyboardInterrupt(), True),
    ],
    ids=["failed rename", "interrupt before a rename", "interrupt after a rename"],
)
def test_a_stop_after_some_files_were_replaced_puts_them_back(previous_set, monkeypatch, stop, after):
    before = _snapshot(previous_set)
    monkeypatch.setattr(cgan_export.file_set.os, "replace", _fail_on_call(2, stop, os.replace, after=after))
    with pytest.raises(type(stop)):
        publish_set(previous_set, NEW_SET)
    assert _snapshot(previous_set) == before


def test_a_stop_signal_while_files_are_renamed_waits_then_puts_the_previous_set_back(
    previous_set, monkeypatch
):
    """A real SIGTERM sent between two renames: held until the renaming is done, then the set is
    rolled back before the signal takes effect."""
    before = _snapshot(previous_set)
    real_replace, sent = os.replace, []

    def rename_then_signal(*args, **kwargs):
        real_replace(*args, **kwargs)
        if not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(cgan_export.file_set.os, "replace", rename_then_signal)
    with _sigterm_raises_keyboard_interrupt(), pytest.raises(KeyboardInterrupt):
        publish_set(previous_set, NEW_SET)
    monkeypatch.undo()
    assert _snapshot(previous_set) == before


def test_a_stop_signal_once_the_set_is_in_says_so_and_keeps_the_new_set(previous_set, monkeypatch):
    """A real SIGTERM while the previous files are cleared away, after the last check: the set is
    in, and the stop must not be taken for one that left the folder unchanged."""
    real_release, sent = cgan_export.file_set.release, []

    def release_then_signal(lock):
        real_release(lock)
        if not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    monkeypatch.setattr(cgan_export.file_set, "release", release_then_signal)
    with _sigterm_raises_keyboard_interrupt(), pytest.raises(StoppedAfterTheSet):
        publish_set(previous_set, NEW_SET)
    monkeypatch.undo()
    assert _contents(previous_set) == {**NEW_SET, "unrelated.txt": b"someone else's"}


def test_without_hard_links_the_previous_files_are_kept_as_copies(previous_set, monkeypatch):
    before = _snapshot(previous_set)

    def no_links(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(cgan_export.file_set.os, "link", no_links)
    monkeypatch.setattr(
        cgan_export.file_set.os,
        "replace",
        _fail_on_call(3, OSError(errno.EIO, "Input/output error"), os.replace),
    )
    with pytest.raises(OSError):
        publish_set(previous_set, NEW_SET)
    assert _snapshot(previous_set) == before


def test_files_that_already_hold_the_content_are_not_touched(previous_set):
    publish_set(previous_set, NEW_SET)
    stamps = {path.name: path.stat().st_mtime_ns for path in previous_set.iterdir()}
    assert publish_set(previous_set, NEW_SET) == []
    assert {path.name: path.stat().st_mtime_ns for path in previous_set.iterdir()} == stamps


def test_an_equivalent_file_is_kept(previous_set):
    same_length = {"a.onnx": lambda old, new: len(old) == len(new)}
    changed = publish_set(previous_set, {"a.onnx": b"previous a.onn_"}, equivalent=same_length)
    assert changed == [] and (previous_set / "a.onnx").read_bytes() == b"previous a.onnx"


@pytest.mark.parametrize("obstacle", ["folder", "link"])
def test_something_in_the_place_of_a_file_is_refused_before_anything_is_written(previous_set, obstacle):
    (previous_set / "b.onnx").unlink()
    if obstacle == "folder":
        (previous_set / "b.onnx").mkdir()
    else:
        (previous_set / "b.onnx").symlink_to(previous_set / "unrelated.txt")
    before = _snapshot(previous_set) if obstacle == "link" else None
    with pytest.raises(FileSetError, match="b.onnx is (a folder|not a regular file); move it out of the way"):
        publish_set(previous_set, NEW_SET)
    assert (previous_set / "a.onnx").read_bytes() == b"previous a.onnx"
    if before is not None:
        assert _snapshot(previous_set) == before


def test_a_folder_that_is_not_writable_is_refused_before_anything_is_written(previous_set, monkeypatch):
    before = _snapshot(previous_set)
    monkeypatch.setattr(cgan_export.file_set.os, "access", lambda path, mode: False)  # tests may run as root
    with pytest.raises(FileSetError, match=f"folder {previous_set} is not writable"):
        publish_set(previous_set, NEW_SET)
    assert _snapshot(previous_set) == before


def test_a_file_in_the_place_of_the_folder_is_refused(tmp_path):
    (tmp_path / "models").write_text("not a folder")
    with pytest.raises(FileSetError, match="models is a file, not a folder"):
        publish_set(tmp_path / "models" / "inner", NEW_SET)


def test_a_folder_created_for_a_set_that_fails_is_removed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(
        cgan_export.file_set.os,
        "fsync",
        _fail_on_call(2, OSError(errno.ENOSPC, "No space left on device"), os.fsync),
    )
    with pytest.raises(OSError):
        publish_set(tmp_path / "new" / "models", NEW_SET)
    assert list(tmp_path.iterdir()) == []


def test_a_second_publisher_waits_until_the_first_set_is_in(previous_set):
    """Two exports into one folder: each set goes in whole, never interleaved with the other."""
    import threading

    from cgan_runtime.files import lock_file

    holder = os.open(previous_set, os.O_RDONLY)
    lock_file(holder)  # as a first export holds it while it renames its files in
    second = threading.Thread(target=publish_set, args=(previous_set, NEW_SET))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive() and (previous_set / "a.onnx").read_bytes() == b"previous a.onnx"
    os.close(holder)
    second.join(timeout=10)
    assert not second.is_alive() and (previous_set / "a.onnx").read_bytes() == b"new a"


@pytest.fixture
def models_before(trained_run, tmp_path) -> Path:
    """An output folder holding a previous set of the export's files."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("cgan_generator.onnx", "cgan_generator_int8.onnx", "MODEL_CARD.md", "sample_grid.png"):
        (folder / name).write_bytes(b"previous " + name.encode())
    return folder


def test_the_export_reports_a_full_disk_in_one_line_and_keeps_the_previous_set(
    trained_run, models_before, monkeypatch
):
    from click.testing import CliRunner

    from cgan_export.cli import export_command

    before = _snapshot(models_before)
    monkeypatch.setattr(
        cgan_export.file_set.os,
        "fsync",
        _fail_on_call(2, OSError(errno.ENOSPC, "No space left on device"), os.fsync),
    )
    result = CliRunner().invoke(
        export_command, ["--checkpoint", str(trained_run / "checkpoint.pt"), "--out-dir", str(models_before)]
    )
    assert result.exit_code == 1
    target = models_before / "cgan_generator_int8.onnx"
    assert result.output.strip().splitlines() == [
        f"Error: export failed, {models_before} unchanged: cannot write {target}: No space left on device"
    ]
    assert _snapshot(models_before) == before


def test_a_signal_stops_the_export_and_keeps_the_previous_set(trained_run, models_before):
    import subprocess
    import time

    before = _snapshot(models_before)
    process = subprocess.Popen(
        [
            CGAN_TRAIN,
            "export",
            "--checkpoint",
            str(trained_run / "checkpoint.pt"),
            "--out-dir",
            str(models_before),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not _catches(process.pid, signal.SIGTERM) and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)  # while it imports torch or exports: before the set is written
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert stderr == f"export stopped, {models_before} unchanged\n"
    assert _snapshot(models_before) == before


def _catches(pid: int, number: int) -> bool:
    """Whether process pid has a handler for the signal (Linux: SigCgt in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (number - 1) & 1)
    return False
