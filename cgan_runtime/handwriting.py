"""Numbers in one hand: a text of the model's digits drawn with one latent vector per row.

The generator's noise carries the handwriting (slant, stroke weight) and its label the digit, so
one noise vector drawn as different digits writes them in one hand. A style number is the seed of
that vector: the same style gives the same hand for any text, and the same bytes for the same text.
Style S's vector is the noise of the first image of seed S (`cgan-run --digit D --seed S`), and
the browser page draws the same one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cgan_runtime.images import to_uint8
from cgan_runtime.memory import check_fits_in_memory
from cgan_runtime.noise import MAX_SEED, noise_rows

if TYPE_CHECKING:
    from cgan_runtime.generator import DigitGenerator, ModelInfo

BLANK = " "  # a blank cell: a space in the text
# A style is a noise seed (0 to 2**64 - 1); a random one stays below this, so that it is easy to note
# down and pass back, and exact as a JavaScript number in the page.
MAX_RANDOM_STYLE = 2**31


def parse_text(text: str, num_classes: int) -> list[int | None]:
    """The digit in each character of text (None for a space); ValueError naming a character that is
    not one of the model's classes."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    digits: list[int | None] = []
    for position, character in enumerate(text, start=1):
        if character == BLANK:
            digits.append(None)
        elif character.isascii() and character.isdigit() and int(character) < num_classes:
            digits.append(int(character))
        else:
            raise ValueError(
                f"character {character!r} (position {position}) is not a digit the model "
                f"draws (0-{num_classes - 1}) or a space"
            )
    return digits


def random_style() -> int:
    return int(np.random.default_rng().integers(MAX_RANDOM_STYLE))


def row_styles(first: int, count: int) -> range:
    """The styles of count rows from first: first, first + 1, ...; refused when they run past the
    last style (a row past it would fail mid-picture)."""
    last = first + count - 1
    if last > MAX_SEED:
        raise ValueError(f"{count:,} rows from style {first} run past the last style, {MAX_SEED}")
    return range(first, last + 1)


def style_noise(style: int, latent_dim: int) -> np.ndarray:
    """The noise vector float32 [latent_dim] of a style."""
    return noise_rows(style, 0, 1, latent_dim)[0]


def draw_rows(generator: DigitGenerator, text: str, styles: Sequence[int]) -> np.ndarray:
    """text in each style: uint8 [len(styles), size, size * len(text)], one row per style.

    Each row is one onnxruntime call of its own, so that memory holds one row's output at a time.
    """
    digits = parse_text(text, generator.info.num_classes)
    rows = blank_rows(generator.info, len(digits), styles)
    for row, style in zip(rows, styles, strict=True):
        noise, labels = cell_inputs(digits, style, generator.info.latent_dim)
        if len(labels):
            fill_row(row, digits, to_uint8(generator.generate(noise, labels), generator.info.output_range))
    return rows


def blank_rows(info: ModelInfo, cells: int, styles: Sequence[int]) -> np.ndarray:
    """uint8 [len(styles), size, size * cells] of background, the styles checked first."""
    checked = [_checked_style(style) for style in styles]
    if not checked:
        raise ValueError("styles must name at least one style")
    size = info.image_size
    check_fits_in_memory(len(checked), size * size * cells, "draw fewer styles at a time")
    return np.zeros((len(checked), size, size * cells), dtype=np.uint8)  # a blank cell is background


def cell_inputs(digits: Sequence[int | None], style: int, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The noise and labels of one row's drawn cells (its digits, spaces left out): the style's one
    noise vector for every cell."""
    labels = np.array([digit for digit in digits if digit is not None], dtype=np.int64)
    noise = np.repeat(style_noise(_checked_style(style), latent_dim)[None], len(labels), axis=0)
    return noise, labels


def fill_row(row: np.ndarray, digits: Sequence[int | None], images: np.ndarray) -> None:
    """Put one row's drawn images (uint8 [cells drawn, size, size], in order) into their cells."""
    size = images.shape[-1]
    drawn = [index for index, digit in enumerate(digits) if digit is not None]
    for index, image in zip(drawn, images, strict=True):
        row[:, index * size : (index + 1) * size] = image


def _checked_style(style) -> int:
    if not isinstance(style, (int, np.integer)) or isinstance(style, bool) or not 0 <= style <= MAX_SEED:
        raise ValueError(f"a style must be an integer in 0-{MAX_SEED}, got {style!r}")
    return int(style)
