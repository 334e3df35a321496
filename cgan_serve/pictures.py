"""The plain endpoints' pictures: what `cgan-run --digit` and `cgan-run --text` write, byte for
byte, drawn through the server's engine (so batched with other requests) instead of a generator
of their own."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass

import numpy as np

from cgan_runtime.draw_text import file_name_part
from cgan_runtime.generator import digit_inputs
from cgan_runtime.handwriting import blank_rows, cell_inputs, fill_row, parse_text, row_styles
from cgan_runtime.images import default_nrow, digits_picture, inverted, save_png, to_uint8
from cgan_serve.engine import Engine
from cgan_serve.protocol import RequestError

MEDIA_TYPES = {"png": "image/png", "npy": "application/octet-stream"}


@dataclass(frozen=True)
class Picture:
    body: bytes
    media_type: str
    file_name: str


async def draw_digits(
    engine: Engine, digit: int, count: int, seed: int, nrow: int | None, invert: bool, output_format: str
) -> Picture:
    info = engine.info
    if not 0 <= digit < info.num_classes:
        raise RequestError(f"digit: {digit} is not a digit in 0-{info.num_classes - 1}")
    noise, labels = digit_inputs(info, digit, count, seed)
    images = to_uint8(await engine.generate(noise, labels), info.output_range)
    if output_format == "npy":
        body = await asyncio.to_thread(_npy_bytes, inverted(images) if invert else images)
    else:
        picture = digits_picture(images, nrow or default_nrow(count), invert)
        body = await asyncio.to_thread(_png_bytes, picture)
    return Picture(body, MEDIA_TYPES[output_format], f"digits_{digit}.{output_format}")


async def draw_text(
    engine: Engine, text: str, count: int, style: int, invert: bool, output_format: str, max_count: int
) -> Picture:
    info = engine.info
    try:
        digits = parse_text(text, info.num_classes)
    except ValueError as error:
        raise RequestError(f"text: {error}") from None
    if count * len(digits) > max_count:
        raise RequestError(
            f"{count} rows of {len(digits)} characters are {count * len(digits)} cells; this server "
            f"draws at most {max_count} per request"
        )
    try:
        styles = row_styles(style, count)
    except ValueError as error:
        raise RequestError(f"style: {error}") from None
    rows = blank_rows(info, len(digits), styles)
    inputs = [cell_inputs(digits, row_style, info.latent_dim) for row_style in styles]
    drawn = len(inputs[0][1])
    if drawn:
        noise = np.concatenate([row_noise for row_noise, _ in inputs])
        labels = np.concatenate([row_labels for _, row_labels in inputs])
        images = to_uint8(await engine.generate(noise, labels), info.output_range)
        for row, start in zip(rows, range(0, len(labels), drawn), strict=True):
            fill_row(row, digits, images[start : start + drawn])
    if invert:
        rows = inverted(rows)
    if output_format == "npy":
        body = await asyncio.to_thread(_npy_bytes, rows)
    else:
        body = await asyncio.to_thread(_png_bytes, rows.reshape(-1, rows.shape[2]))
    return Picture(body, MEDIA_TYPES[output_format], f"text_{file_name_part(text)}.{output_format}")


def _png_bytes(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    save_png(picture, buffer)
    return buffer.getvalue()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.uint8))
    return buffer.getvalue()
