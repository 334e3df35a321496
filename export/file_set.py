"""Publishing a set of files as one: after any failure the folder holds the previous set exactly.

Every new file is written and flushed beside its target first (a full disk or a read-only folder
fails here, before any target changes). Then each changed file replaces its target, the previous
one kept under a second name until the whole set is in; if a replacement fails, or a stop signal
arrives meanwhile, the previous files are put back. Stop signals wait while files are renamed, so
a signal never leaves the renaming half done. A file whose content is unchanged is left alone, so
publishing the same set twice changes nothing at all. Publishers of one folder take turns.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from cgan_runtime.files import (
    HAS_LOCKS,
    NO_HARD_LINKS,
    finish_temporary,
    lock_file,
    locked_temporary,
    release,
    remove_stale_temporaries,
    unused_temporary_name,
)
from cgan_runtime.signals import stop_signals_held
from cgan_runtime.streams import note

Equivalent = Callable[[bytes, bytes], bool]


class StoppedAfterTheSet(KeyboardInterrupt):
    """A stop signal that came after the new set was in, whole: the folder holds the new files."""


class FileSetError(Exception):
    """The set cannot be published; the folder is as it was."""


def publish_set(
    folder: Path, contents: dict[str, bytes], equivalent: dict[str, Equivalent] | None = None
) -> list[str]:
    """Write contents (file name -> bytes) into folder as one set; return the names that changed.

    equivalent[name](old, new) may say that an existing file already holds the content (a PNG with
    the same pixels, say), in which case it is kept as it is.
    """
    folder = Path(folder)
    equivalent = equivalent or {}
    _check_targets(folder, contents)
    created = _make_folder(folder)
    staged: dict[str, tuple[Path, int | None]] = {}
    folder_lock = None
    try:
        folder_lock = _lock_folder(folder)
        remove_stale_temporaries(folder)
        changed = [
            name for name, data in contents.items() if not _holds(folder / name, data, equivalent.get(name))
        ]
        for name in changed:
            staged[name] = _stage(folder / name, contents[name])
        _replace_all(folder, {name: path for name, (path, _) in staged.items()})
    except BaseException:
        for path, _ in staged.values():
            with suppress(FileNotFoundError):
                os.unlink(path)
        for made in created:
            with suppress(OSError):
                os.rmdir(made)
        raise
    finally:
        for _, lock in staged.values():
            release(lock)
        release(folder_lock)
    return changed


def _lock_folder(folder: Path) -> int | None:
    """A descriptor holding the folder's lock, waited for, and said so, while another publisher has
    it (None where folders cannot be opened, as on Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    if not lock_file(handle, wait=False):
        note(f"waiting for another export into {folder} to finish")
        lock_file(handle)
    return handle


def _check_targets(folder: Path, contents: dict[str, bytes]) -> None:
    """Refuse, before writing anything, a set that could not be published whole."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                raise FileSetError(f"{existing} is a file, not a folder")
            if existing == folder and not os.access(folder, os.W_OK | os.X_OK):
                raise FileSetError(f"folder {folder} is not writable")
            break
    for name in contents:
        target = folder / name
        if target.is_symlink() or (target.exists() and not target.is_file()):
            kind = "a folder" if target.is_dir() and not target.is_symlink() else "not a regular file"
            raise FileSetError(f"{target} is {kind}; move it out of the way")


def _make_folder(folder: Path) -> list[Path]:
    """Create folder and missing parents; return those created, innermost first."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _holds(target: Path, data: bytes, equivalent: Equivalent | None) -> bool:
    try:
        existing = target.read_bytes()
    except FileNotFoundError:
        return False
    return existing == data or (equivalent is not None and equivalent(existing, data))


def _stage(target: Path, data: bytes) -> tuple[Path, int | None]:
    """data in a locked temporary file beside target, flushed to disk."""
    temporary, lock = locked_temporary(target)
    try:
        temporary.write_bytes(data)
        finish_temporary(temporary)
    except BaseException as error:
        os.unlink(temporary)
        release(lock)
        if isinstance(error, OSError):  # named after the file it was for, not its temporary name
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise
    return temporary, lock


def _replace_all(folder: Path, staged: dict[str, Path]) -> None:
    """Rename every staged file over its target; on any failure, or a stop signal received
    meanwhile, put the previous files back (the signal then takes effect, once all is tidy). A
    signal after the last check, while the previous files are cleared away, is StoppedAfterTheSet:
    the new set is in by then, and the caller must not say the folder is unchanged."""
    in_place = False
    try:
        with stop_signals_held() as stop_pending:
            previous: dict[str, tuple[Path, int | None]] = {}
            try:
                for name in staged:
                    if (folder / name).exists():
                        previous[name] = _set_aside(folder / name)
                try:
                    for name, temporary in staged.items():
                        os.replace(temporary, folder / name)
                    if stop_pending():
                        raise KeyboardInterrupt
                    in_place = True
                except BaseException:
                    for name, temporary in staged.items():
                        if temporary.exists():  # not renamed: its target still holds the previous file
                            continue
                        with suppress(OSError):
                            if name in previous:
                                os.replace(previous[name][0], folder / name)
                            else:
                                os.unlink(folder / name)
                    raise
            finally:
                for backup, lock in previous.values():
                    with suppress(FileNotFoundError):
                        os.unlink(backup)
                    release(lock)
    except KeyboardInterrupt:
        if in_place:
            raise StoppedAfterTheSet from None
        raise


def _set_aside(target: Path) -> tuple[Path, int | None]:
    """A second name for target's file, the way back if the set fails, and the lock that keeps a
    stale clean-up from taking it (it is a temporary file by its name)."""
    handle = None
    if HAS_LOCKS:  # the lock is on the file itself, whatever its name
        handle = os.open(target, os.O_RDONLY)
        lock_file(handle)
    try:
        backup = unused_temporary_name(target)
        os.link(target, backup)
        return backup, handle
    except OSError as error:
        release(handle)
        if error.errno not in NO_HARD_LINKS:
            raise
    backup, handle = locked_temporary(target)  # no hard links here: keep a copy instead
    try:
        shutil.copy2(target, backup)  # with its permissions and times
    except BaseException:
        os.unlink(backup)
        release(handle)
        raise
    return backup, handle
