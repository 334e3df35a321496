"""Publishing a set of files as one: after any failure the folder holds the previous set exactly.

Every new file is written and flushed beside its target first (a full disk or a read-only folder
fails here, before any target changes). Then each changed file replaces its target, the previous
one kept under a hard link until the whole set is in; if a replacement fails, or a signal stops
it, the files already replaced are put back. A file whose content is unchanged is left alone, so
publishing the same set twice changes nothing at all.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from cgan_runtime.files import (
    NO_HARD_LINKS,
    lock_file,
    locked_temporary,
    remove_stale_temporaries,
    set_default_permissions,
    unused_temporary_name,
)

Equivalent = Callable[[bytes, bytes], bool]


class FileSetError(Exception):
    """The set cannot be published; the folder is as it was."""


def publish_set(folder: Path, contents: dict[str, bytes],
                equivalent: dict[str, Equivalent] | None = None) -> list[str]:
    """Write contents (file name -> bytes) into folder as one set; return the names that changed.

    equivalent[name](old, new) may say that an existing file already holds the content (a PNG with
    the same pixels, say), in which case it is kept as it is.
    """
    folder = Path(folder)
    equivalent = equivalent or {}
    _check_targets(folder, contents)
    created = _make_folder(folder)
    staged: dict[str, tuple[Path, int]] = {}
    folder_lock = _lock_folder(folder)  # a second export into the folder waits: sets never interleave
    try:
        remove_stale_temporaries(folder)
        changed = [name for name, data in contents.items()
                   if not _holds(folder / name, data, equivalent.get(name))]
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
            os.close(lock)
        if folder_lock is not None:
            os.close(folder_lock)
    return changed


def _lock_folder(folder: Path) -> int | None:
    """A descriptor holding the folder's lock (None where folders cannot be opened, as on Windows)."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    lock_file(handle)
    return handle


def _check_targets(folder: Path, contents: dict[str, bytes]) -> None:
    """Refuse, before writing anything, a set that could not be published whole."""
    for existing in (folder, *folder.parents):
        if existing.exists():
            if not existing.is_dir():
                raise FileSetError(f"{existing} is a file, not a folder")
            if not os.access(existing, os.W_OK | os.X_OK) and existing == folder:
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


def _stage(target: Path, data: bytes) -> tuple[Path, int]:
    """data in a locked temporary file beside target, flushed to disk."""
    temporary, lock = locked_temporary(target)
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        set_default_permissions(temporary)
    except BaseException as error:
        os.unlink(temporary)
        os.close(lock)
        if isinstance(error, OSError):  # named after the file it was for, not its temporary name
            raise OSError(error.errno, error.strerror, str(target)) from error
        raise
    return temporary, lock


def _replace_all(folder: Path, staged: dict[str, Path]) -> None:
    """Rename every staged file over its target; on any failure put the previous files back."""
    previous: dict[str, tuple[Path, int]] = {}
    replaced: list[str] = []
    try:
        for name in staged:
            if (folder / name).exists():
                previous[name] = _set_aside(folder / name)
        for name, temporary in staged.items():
            os.replace(temporary, folder / name)
            replaced.append(name)
    except BaseException:
        for name in replaced:
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
            os.close(lock)


def _set_aside(target: Path) -> tuple[Path, int]:
    """A second name for target's file, the way back if the set fails, and the descriptor whose lock
    keeps a stale clean-up from taking it (it is a temporary file by its name)."""
    handle = os.open(target, os.O_RDONLY)
    try:
        lock_file(handle)
        backup = unused_temporary_name(target)
        os.link(target, backup)
        return backup, handle
    except OSError as error:
        os.close(handle)
        if error.errno not in NO_HARD_LINKS:
            raise
    backup, handle = locked_temporary(target)  # no hard links here: keep a copy instead
    try:
        shutil.copyfile(target, backup)
    except BaseException:
        os.unlink(backup)
        os.close(handle)
        raise
    return backup, handle
