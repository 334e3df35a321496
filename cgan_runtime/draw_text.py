"""cgan-run --text: a number in one handwriting, one row per style, as a PNG or npy."""

from __future__ import annotations

import re
from pathlib import Path

import click

from cgan_runtime.cli_output import check_size, check_target, load_generator, output_target, publish

NAME_CHARACTERS = 40  # of the text, in the default file name


def draw_text(
    text: str,
    count: int,
    style: int | None,
    out_name: str | None,
    force: bool,
    output_format: str | None,
    invert: bool,
    model_path: Path | None,
    device: str,
) -> None:
    from cgan_runtime.handwriting import draw_rows, parse_text, random_style, row_styles
    from cgan_runtime.images import inverted, write_npy, write_png
    from cgan_runtime.output_checks import NPY_HEADER_BYTES, check_free_space, check_picture_size

    try:  # the characters first, as far as they can be checked without the model
        parse_text(text, num_classes=10)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--text") from error
    out_path, output_format = output_target(out_name, output_format, f"text_{file_name_part(text)}")
    check_target(out_path, force)
    generator = load_generator(model_path, device, one_shot=count == 1)
    try:
        parse_text(text, generator.info.num_classes)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--text") from error
    size = generator.info.image_size
    height, width = count * size, len(text) * size
    if output_format == "png":
        check_size(
            lambda: check_picture_size(height, width, f"{count:,} rows of {len(text)} characters"), "--count"
        )
    else:
        check_size(
            lambda: check_free_space(
                NPY_HEADER_BYTES + height * width,
                out_path.parent,
                f"{count:,} rows of {len(text)} characters",
            ),
            "--count",
        )
    try:
        styles = row_styles(random_style() if style is None else style, count)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--style") from error
    try:
        rows = draw_rows(generator, text, styles)
    except ValueError as error:  # more rows than this machine's memory holds
        raise click.BadParameter(str(error), param_hint="--count") from error
    if invert:
        rows = inverted(rows)
    if output_format == "npy":
        publish(out_path, lambda: write_npy(out_path, [rows], count, rows.shape[1:], replace=force))
    else:
        publish(out_path, lambda: write_png(out_path, rows.reshape(height, width), replace=force))


def file_name_part(text: str) -> str:
    """The text as it can stand in a file name (digits and spaces only by now): runs of spaces as
    one underscore, cut short."""
    return re.sub(r"\s+", "_", text.strip())[:NAME_CHARACTERS] or "blank"
