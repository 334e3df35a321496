"""cgan-run: draw handwritten digits from the command line; each job is a module of its own
(draw_digits, draw_text), this one reads the options and picks the job."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_runtime.cli_output import Command
from cgan_runtime.providers import DEVICES

DEFAULT_DIGIT_COUNT = 16

EXAMPLES = """\b
Examples:
  cgan-run --digit 5                      sixteen 5s in digits_5.png
  cgan-run --digit 8 --count 1            one bare 28x28 digit
  cgan-run --digit 7 --count 100 --nrow 10 --seed 42 --out sevens.png
  cgan-run --digit 3 --count 1000 --format npy --out threes.npy
  cgan-run --text 2026 --style 7          the number in handwriting 7, in text_2026.png
  cgan-run --text "12 34" --count 3 --invert   three hands, dark ink on white
  cgan-run --digit 0 --model my_model.onnx --device cuda
"""


# cgan_runtime.noise.MAX_SEED, written out: noise.py imports NumPy, which --help has no need of.
SEED_RANGE = click.IntRange(min=0, max=2**64 - 1)


@click.command(cls=Command, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgan-runtime", prog_name="cgan-run")
@click.option(
    "--digit", type=int, default=None, help="The digit to draw: 0-9 (the range comes from the model)."
)
@click.option(
    "--text",
    default=None,
    help="Instead of --digit: a number to write in one handwriting, such as 2026 (digits, "
    "and spaces for blank cells).",
)
@click.option(
    "--count",
    type=click.IntRange(min=1),
    default=None,
    help=f"How many images of --digit (default {DEFAULT_DIGIT_COUNT}), or rows of --text, "
    "one handwriting each (default 1).",
)
@click.option(
    "--seed",
    type=SEED_RANGE,
    default=None,
    help="Random seed of --digit; the same seed gives byte-identical output. Default: random.",
)
@click.option(
    "--style",
    type=SEED_RANGE,
    default=None,
    help="The handwriting of --text: the same style writes any text in the same hand, and "
    "the same text in the same bytes; rows use STYLE, STYLE+1, ... Default: random.",
)
@click.option("--invert", is_flag=True, help="Dark ink on white, like paper.")
@click.option(
    "--out",
    "out_name",
    type=click.Path(dir_okay=False),
    default=None,
    help="Output file. Default: digits_DIGIT.png or text_TEXT.png (or .npy) in the current "
    "folder. An existing file is refused unless --force.",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option(
    "--nrow",
    type=click.IntRange(min=1),
    default=None,
    help="Images per row of the --digit PNG grid. Default: a near-square grid.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["png", "npy"]),
    default=None,
    help="png: a picture (a grid of --digit images, or --text rows); npy: the uint8 array "
    "[count, height, width]. Default: from the --out suffix, else png.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="An ONNX model with the cgan interface. Default: the bundled model.",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="auto",
    show_default=True,
    help="auto: CUDA when onnxruntime's CUDA provider loads, else CPU.",
)
@click.option(
    "--info",
    "show_info",
    is_flag=True,
    help="Print what the model says about itself, the onnxruntime installed, and the device that "
    "really runs the model; draw nothing.",
)
def main(**options) -> None:
    """Draw handwritten digits: COUNT images of DIGIT, or TEXT in one handwriting; write them as a
    PNG or an npy array.

    Prints the path of the file written.
    """
    from cgan_runtime.cli_output import run_stoppably

    run_stoppably(_run, **options)


def _run(
    digit: int | None,
    text: str | None,
    count: int | None,
    seed: int | None,
    style: int | None,
    nrow: int | None,
    show_info: bool,
    **common,
) -> None:
    if show_info:
        from cgan_runtime.cli_output import print_model_info

        print_model_info(common["model_path"], common["device"])
        return
    if (digit is None) == (text is None):
        raise click.UsageError("give either --digit (images of one digit) or --text (a number in one hand)")
    if text is not None:
        for name, value, instead in (
            ("--seed", seed, "--style picks the handwriting"),
            ("--nrow", nrow, "each row is one handwriting"),
        ):
            if value is not None:
                raise click.UsageError(f"{name} is for --digit; with --text, {instead}")
        from cgan_runtime.draw_text import draw_text

        draw_text(text, count or 1, style, **common)
    else:
        if style is not None:
            raise click.UsageError("--style is for --text; with --digit, --seed picks the images")
        from cgan_runtime.draw_digits import draw_digits

        draw_digits(digit, count or DEFAULT_DIGIT_COUNT, seed, nrow=nrow, **common)
