"""Turning generator output into pictures: uint8 conversion, grid tiling, PNG and npy files."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cgan_runtime.files import atomic_path

GRID_PADDING = 2
GRID_BACKGROUND = 40  # dark grey: the tiles stay apart without drawing the eye


def to_uint8(images: np.ndarray, output_range: tuple[float, float]) -> np.ndarray:
    """Map generator output [N, 1, H, W] (or [N, H, W]) in output_range to uint8 [N, H, W]."""
    low, high = output_range
    if images.ndim == 4:
        images = images[:, 0]
    scaled = (images.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def default_nrow(count: int) -> int:
    """Images per row for a near-square grid."""
    return max(1, math.ceil(math.sqrt(count)))


def grid_shape(count: int, height: int, width: int, nrow: int) -> tuple[int, int]:
    """(height, width) in pixels of the grid tile() makes of count images of height x width."""
    if count == 1:
        return height, width
    columns = min(nrow, count)
    rows = math.ceil(count / columns)
    return rows * (height + GRID_PADDING) + GRID_PADDING, columns * (width + GRID_PADDING) + GRID_PADDING


def tile(images: np.ndarray, nrow: int) -> np.ndarray:
    """Lay out uint8 images [N, H, W] in a grid of nrow images per row, with padding between; one
    image is the bare image (a single digit is a picture of its own, not a grid)."""
    count, height, width = images.shape
    if count == 1:
        return images[0].copy()
    columns = min(nrow, count)
    step_y, step_x = height + GRID_PADDING, width + GRID_PADDING
    grid = np.full(grid_shape(count, height, width, nrow), GRID_BACKGROUND, dtype=np.uint8)
    for index, image in enumerate(images):
        top = GRID_PADDING + (index // columns) * step_y
        left = GRID_PADDING + (index % columns) * step_x
        grid[top : top + height, left : left + width] = image
    return grid


def inverted(picture: np.ndarray) -> np.ndarray:
    """Dark ink on white, like paper: the uint8 picture's negative."""
    return 255 - picture


def digits_picture(images: np.ndarray, nrow: int, invert: bool) -> np.ndarray:
    """What `cgan-run --digit` draws of uint8 images [N, H, W]: their grid, the whole picture
    inverted with invert (dark digits on white, apart by light grey lines)."""
    grid = tile(images, nrow)
    return inverted(grid) if invert else grid


def save_png(picture: np.ndarray, target) -> None:
    """A uint8 picture as PNG into target (a path or a binary file): one encoder for every writer,
    so that a file and a served image of the same picture are the same bytes."""
    from PIL import Image

    Image.fromarray(picture).save(target, format="PNG")


def write_png(path: Path, grid: np.ndarray, replace: bool = True) -> None:
    """Write a uint8 picture as PNG; replace=False: FileExistsError if path exists by then."""
    with atomic_path(path, replace=replace) as temporary:
        save_png(grid, temporary)


def write_npy(
    path: Path, chunks: Iterable[np.ndarray], count: int, image_shape: tuple[int, int], replace: bool = True
) -> None:
    """Write uint8 images [count, *image_shape] as .npy, chunk by chunk as they come (bounded memory).

    The file is the one np.save would write for the whole array. replace=False: FileExistsError if
    path exists by the time it is complete.
    """
    header = {
        "descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)),
        "fortran_order": False,
        "shape": (count, *image_shape),
    }
    with atomic_path(path, replace=replace) as temporary, open(temporary, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        written = 0
        for chunk in chunks:
            if chunk.shape[1:] != tuple(image_shape):
                raise ValueError(f"expected images of {tuple(image_shape)}, got {chunk.shape[1:]}")
            handle.write(np.ascontiguousarray(chunk, dtype=np.uint8).tobytes())
            written += len(chunk)
        if written != count:
            raise ValueError(f"expected {count} images, got {written}")
