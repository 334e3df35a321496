"""Refusing an output that cannot be written, before any work: its path, and the size it needs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cgan_runtime.images import grid_shape

# Pillow's decompression-bomb threshold: opening a larger picture with it warns of an attack.
PNG_MAX_PIXELS = 89_478_485
NPY_HEADER_BYTES = 128


class OutputError(ValueError):
    """The output cannot be written; the message names the problem and what to do."""


def check_output_path(path: Path, force: bool) -> None:
    """The folder exists and is writable, and the file is new (or force replaces it)."""
    folder = path.parent
    check_output_folder(folder)
    try:
        is_folder, is_link, exists, is_file = path.is_dir(), path.is_symlink(), path.exists(), path.is_file()
    except OSError as error:  # a name the file system refuses, such as one over 255 bytes
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None
    if is_folder:
        raise OutputError(f"{path} is a folder; give a file name")
    if is_link or (exists and not is_file):
        raise OutputError(f"{path} is not a regular file (a link, device or pipe); give a new file name")
    if exists and not force:
        raise OutputError(f"{path} exists; add --force to replace it")


def check_output_folder(folder: Path) -> None:
    """The folder an output goes into exists, is a folder, and is writable."""
    try:
        exists, is_folder = folder.exists(), folder.is_dir()
    except OSError as error:  # a name the file system refuses, such as one over 255 bytes
        raise OutputError(f"cannot write into {folder}: {error.strerror or error}") from None
    if exists and not is_folder:
        raise OutputError(f"{folder} is a file, not a folder")
    if not is_folder:
        raise OutputError(f"folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"folder {folder} is not writable")


def check_output_size(count: int, image_size: int, output_format: str, nrow: int, folder: Path) -> None:
    """A PNG grid Pillow opens without a warning, or an npy file that fits in the free space."""
    if output_format == "png":
        height, width = grid_shape(count, image_size, image_size, nrow)
        check_picture_size(height, width, f"a PNG grid of {count:,} images")
    else:
        check_free_space(NPY_HEADER_BYTES + count * image_size * image_size, folder, f"{count:,} images")


def check_picture_size(height: int, width: int, what: str) -> None:
    """A PNG of height x width pixels that Pillow opens without a decompression-bomb warning."""
    if height * width > PNG_MAX_PIXELS:
        raise OutputError(
            f"{what} would be {width:,}x{height:,} pixels, over Pillow's "
            f"{PNG_MAX_PIXELS / 1e6:.0f} MP decompression-bomb threshold; use --format npy"
        )


def check_free_space(needed: int, folder: Path, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise OutputError(f"{what} need {_amount(needed)} in {folder}, which has {_amount(free)} free")


def _amount(size: int) -> str:
    """A size in the unit that shows it: 7.8 GB, 705.7 MB, 20 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size / 1e3:.0f} kB"
