"""cgan-run: draw handwritten digits from the command line (a thin layer over DigitGenerator)."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_runtime.providers import DEVICES

EXAMPLES = """\b
Examples:
  cgan-run --digit 5                      sixteen 5s in digits_5.png
  cgan-run --digit 7 --count 100 --nrow 10 --seed 42 --out sevens.png
  cgan-run --digit 3 --count 1000 --format npy --out threes.npy
  cgan-run --digit 0 --model my_model.onnx --device cuda
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--digit", type=int, required=True,
              help="The digit to draw: 0-9 (the range comes from the model).")
@click.option("--count", type=click.IntRange(min=1), default=16, show_default=True,
              help="How many images.")
@click.option("--seed", type=int, default=None,
              help="Random seed; the same seed gives byte-identical output. Default: random.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output file. Default: digits_DIGIT.png (or .npy) in the current folder.")
@click.option("--nrow", type=click.IntRange(min=1), default=None,
              help="Images per row of the PNG grid. Default: a near-square grid.")
@click.option("--format", "output_format", type=click.Choice(["png", "npy"]), default=None,
              help="png: a grid picture; npy: the uint8 array [count, height, width]. "
                   "Default: from the --out suffix, else png.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="An ONNX model with the cgan interface. Default: the bundled model.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA when onnxruntime's CUDA provider loads, else CPU.")
def main(digit: int, count: int, seed: int | None, out_path: Path | None, nrow: int | None,
         output_format: str | None, model_path: Path | None, device: str) -> None:
    """Draw COUNT handwritten images of DIGIT and write them as a PNG grid or an npy array.

    Prints the path of the file written.
    """
    from cgan_runtime.generator import DigitGenerator, ModelError
    from cgan_runtime.images import default_nrow, tile, write_npy, write_png
    from cgan_runtime.providers import DeviceError

    if output_format is None:
        output_format = "npy" if out_path is not None and out_path.suffix == ".npy" else "png"
    if out_path is None:
        out_path = Path(f"digits_{digit}.{output_format}")
    try:
        generator = DigitGenerator(model_path, device=device)
    except (ModelError, DeviceError) as error:
        raise click.ClickException(str(error)) from error
    last_digit = generator.info.num_classes - 1
    if not 0 <= digit <= last_digit:
        raise click.BadParameter(f"{digit} is not a digit in 0-{last_digit}", param_hint="--digit")
    if not out_path.parent.is_dir():
        raise click.BadParameter(f"folder {out_path.parent} does not exist", param_hint="--out")
    images = generator.sample(digit, count, seed)
    try:
        if output_format == "npy":
            write_npy(out_path, images)
        else:
            write_png(out_path, tile(images, nrow or default_nrow(count)))
    except OSError as error:
        raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from error
    click.echo(str(out_path))
