"""Numbers in one hand: a text of the model's digits drawn with one latent vector per row.

The generator's noise carries the handwriting (slant, stroke weight) and its label the digit, so
one noise vector drawn as different digits writes them in one hand. A style number is the seed of
that vector: the same style gives the same hand for any text, and the same bytes for the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cgan_runtime.images import to_uint8
from cgan_runtime.memory import check_fits_in_memory

if TYPE_CHECKING:
    from cgan_runtime.generator import DigitGenerator

BLANK = " "  # a blank cell: a space in the text
# Styles are seeds of NumPy's generator, which takes any non-negative integer; the CLI and a random
# style stay below this so that a style is easy to note down and pass back.
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


def style_noise(style: int, latent_dim: int) -> np.ndarray:
    """The noise vector float32 [latent_dim] of a style."""
    return np.random.default_rng(style).standard_normal(latent_dim, dtype=np.float32)


def draw_rows(generator: DigitGenerator, text: str, styles: Sequence[int]) -> np.ndarray:
    """text in each style: uint8 [len(styles), size, size * len(text)], one row per style.

    Each row is one onnxruntime call of its own, so a style's row does not depend on the others.
    """
    digits = parse_text(text, generator.info.num_classes)
    styles = [_checked_style(style) for style in styles]
    if not styles:
        raise ValueError("styles must name at least one style")
    info = generator.info
    size, cells = info.image_size, len(digits)
    check_fits_in_memory(len(styles), size * size * cells, "draw fewer styles at a time")
    rows = np.zeros((len(styles), size, size * cells), dtype=np.uint8)  # a blank cell is background
    drawn = [index for index, digit in enumerate(digits) if digit is not None]
    if not drawn:
        return rows
    labels = np.array([digits[index] for index in drawn], dtype=np.int64)
    for row, style in zip(rows, styles, strict=True):
        noise = np.repeat(style_noise(style, info.latent_dim)[None], len(labels), axis=0)
        images = to_uint8(generator.generate(noise, labels), info.output_range)
        for index, image in zip(drawn, images, strict=True):
            row[:, index * size : (index + 1) * size] = image
    return rows


def _checked_style(style) -> int:
    if not isinstance(style, (int, np.integer)) or isinstance(style, bool) or style < 0:
        raise ValueError(f"a style must be a non-negative integer, got {style!r}")
    return int(style)
