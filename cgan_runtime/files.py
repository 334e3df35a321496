"""Atomic file writing: a file (or a folder of files) appears complete under its name, or not at all.

A temporary file sits beside its target (so that publishing it is one rename or link on one file
system) and is held under an advisory lock for as long as its writer lives. A writer killed
outright (SIGKILL, a power cut) leaves its temporary file unlocked; the next write into that
folder removes it, and never one whose writer still runs.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cgan_runtime.signals import stop_requested, stop_signals_held

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so stale temporary files are not collected
    fcntl = None
HAS_LOCKS = fcntl is not None

# Temporary files are named .TARGET.cgan-RANDOM.part: hidden, and marked as ours so that the clean-up
# of stale ones never touches anyone else's files.
TEMPORARY_MARK = ".cgan-"
TEMPORARY_SUFFIX = ".part"
# Only the start of a long target name goes into its temporary file's, which must fit the file
# system's limit on a name (255 bytes) with the mark and the random part added: bytes, not characters.
NAME_IN_TEMPORARY = 100
# Where a file system cannot hard-link, a new name is claimed by creating it exclusively instead.
NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}


@contextmanager
def atomic_path(target: Path, replace: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside target; on success it becomes target, on failure it vanishes.

    replace=False publishes only if target does not exist at that moment (a hard link, which the
    file system refuses atomically): FileExistsError when the file appeared while the caller
    worked, however late. The temporary file is flushed to disk before it is published, so that a
    crash never leaves a torn file under the target's name.
    """
    target = Path(target)
    remove_stale_temporaries(target.parent)
    temporary = lock = None
    try:
        # A stop signal between the file's creation and its name reaching `temporary` would leave
        # it behind: the signals wait until it is held here, then take effect inside the try.
        with stop_signals_held():
            temporary, lock = locked_temporary(target)
        yield temporary
        finish_temporary(temporary)
        if stop_requested():  # a stop whose KeyboardInterrupt was lost on the way: publish nothing
            raise KeyboardInterrupt
        if replace:
            os.replace(temporary, target)
        else:
            publish_new(temporary, target)
    except BaseException:
        if temporary is not None:
            with suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    finally:
        release(lock)


@contextmanager
def atomic_folder(target: Path, replace_if=None) -> Iterator[Path]:
    """Yield a temporary folder beside target; on success it becomes target, on failure it vanishes.

    The name target is claimed at the end (FileExistsError if it exists by then), unless
    replace_if(target) says an existing folder there may be replaced: then the old folder is moved
    aside, the new one put in its place, and the old one removed.
    """
    target = Path(target)
    remove_stale_temporaries(target.parent)
    temporary = lock = None
    try:
        with stop_signals_held():  # as in atomic_path: the folder is ours before a stop can act
            temporary = Path(
                tempfile.mkdtemp(prefix=_temporary_start(target), suffix=TEMPORARY_SUFFIX, dir=target.parent)
            )
            lock = lock_folder(temporary)
        yield temporary
        publish_folder(temporary, target, replace_if)
    except BaseException:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    finally:
        release(lock)


def publish_folder(folder: Path, target: Path, replace_if=None) -> None:
    """Give the finished folder (beside target) the name target: claimed if free (FileExistsError if
    not), or, where replace_if(target) allows, in place of the folder there."""
    os.sync()  # the files inside reach the disk before the folder gets its name
    if stop_requested():
        raise KeyboardInterrupt
    os.chmod(folder, 0o777 & ~_umask())
    if replace_if is not None and target.is_dir() and not target.is_symlink() and replace_if(target):
        _replace_folder(folder, target)
    else:
        os.mkdir(target)  # the claim: FileExistsError if the name is taken
        try:
            os.rename(folder, target)  # over the empty claim
        except BaseException:
            os.rmdir(target)
            raise


def _replace_folder(new: Path, target: Path) -> None:
    """Put the folder new in target's place; the old folder, locked (a stale one to the next run's
    clean-up should this process die now), is removed once the new one is in."""
    old_lock = lock_folder(target)
    aside = unused_temporary_name(target)
    try:
        os.rename(target, aside)
        try:
            os.rename(new, target)
        except BaseException:
            os.rename(aside, target)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    finally:
        release(old_lock)


def lock_folder(folder: Path, wait: bool = True) -> int | None:
    """Hold folder's lock (see lock_file): the descriptor to release, None where there are no locks;
    without wait, BlockingIOError if another process holds it."""
    if fcntl is None:
        return None
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    if lock_file(handle, wait):
        return handle
    os.close(handle)
    raise BlockingIOError(errno.EWOULDBLOCK, f"{folder} is held by another process")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def locked_temporary(target: Path) -> tuple[Path, int | None]:
    """A new, empty temporary file beside target, and the descriptor that holds its lock (release
    it once the file is published or removed; None where there are no locks)."""
    while True:
        handle, name = tempfile.mkstemp(
            prefix=_temporary_start(target), suffix=TEMPORARY_SUFFIX, dir=target.parent
        )
        if fcntl is None:  # Windows: a file held open there cannot be renamed
            os.close(handle)
            return Path(name), None
        lock_file(handle)
        # A clean-up elsewhere may have taken the file for stale between its creation and the lock.
        with suppress(FileNotFoundError):
            if os.stat(name, follow_symlinks=False).st_ino == os.fstat(handle).st_ino:
                return Path(name), handle
        os.close(handle)


def finish_temporary(temporary: Path) -> None:
    """Flush a written temporary file to disk and give it the permissions of a new file (it was
    private to its writer until now)."""
    with open(temporary, "rb+") as written:
        os.fsync(written.fileno())
    set_default_permissions(temporary)


def unused_temporary_name(target: Path) -> Path:
    """A name of the temporary kind beside target that nothing has (for a second link to a file)."""
    while True:
        name = target.with_name(f"{_temporary_start(target)}{secrets.token_hex(4)}{TEMPORARY_SUFFIX}")
        if not os.path.lexists(name):
            return name


def _temporary_start(target: Path) -> str:
    return f".{name_start(target.name, NAME_IN_TEMPORARY)}{TEMPORARY_MARK}"


def name_start(name: str, max_bytes: int) -> str:
    """The longest start of name that is at most max_bytes bytes on disk (a character of UTF-8 is
    up to 4), so that a name built from it fits the file system's limit on a name."""
    start = name[:max_bytes]
    while len(os.fsencode(start)) > max_bytes:
        start = start[:-1]
    return start


def lock_file(handle: int, wait: bool = True) -> bool:
    """Mark the file open on handle as in use until handle is closed (or its process dies); without
    wait, False when another holds it. Always True where there are no locks."""
    if fcntl is None:
        return True
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def release(handle: int | None) -> None:
    """Give up a lock from locked_temporary or lock_file."""
    if handle is not None:
        os.close(handle)


def publish_new(temporary: Path, target: Path) -> None:
    """Give the finished temporary file the name target, unless target exists (FileExistsError)."""
    try:
        os.link(temporary, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in NO_HARD_LINKS:
            raise
        # Claiming the name exclusively, then renaming over the empty claim, is as safe against a
        # second writer; a reader may see the empty file for that moment.
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            os.replace(temporary, target)
        except BaseException:
            os.unlink(target)  # the claim, empty: never left under the target's name
            raise
    else:
        os.unlink(temporary)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files in folder whose writer is gone (no lock held); return them."""
    if fcntl is None:
        return []
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and TEMPORARY_MARK in name and name.endswith(TEMPORARY_SUFFIX)):
            continue
        with suppress(OSError):
            is_folder = entry.is_dir(follow_symlinks=False)
            if not (is_folder or entry.is_file(follow_symlinks=False)):
                continue
            handle = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                if lock_file(handle, wait=False) and (  # False while its writer lives
                    os.stat(entry.path, follow_symlinks=False).st_ino == os.fstat(handle).st_ino
                ):
                    if is_folder:
                        shutil.rmtree(entry.path)
                    else:
                        os.unlink(entry.path)
                    removed.append(Path(entry.path))
            finally:
                os.close(handle)
    return removed


def set_default_permissions(path: Path) -> None:
    """The permissions a new file would have (a temporary one is private to its writer)."""
    os.chmod(path, 0o666 & ~_umask())
