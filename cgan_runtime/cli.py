"""cgan-run: draw handwritten digits from the command line (a thin layer over DigitGenerator)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from cgan_runtime.providers import DEVICES

PROGRESS_DELAY_SECONDS = 1.0  # shorter runs show no bar

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
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Random seed; the same seed gives byte-identical output. Default: random.")
@click.option("--out", "out_name", type=click.Path(dir_okay=False), default=None,
              help="Output file. Default: digits_DIGIT.png (or .npy) in the current folder. "
                   "An existing file is refused unless --force.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--nrow", type=click.IntRange(min=1), default=None,
              help="Images per row of the PNG grid. Default: a near-square grid.")
@click.option("--format", "output_format", type=click.Choice(["png", "npy"]), default=None,
              help="png: a grid picture; npy: the uint8 array [count, height, width]. "
                   "Default: from the --out suffix, else png.")
@click.option("--model", "model_path", type=click.Path(path_type=Path), default=None,
              help="An ONNX model with the cgan interface. Default: the bundled model.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True,
              help="auto: CUDA when onnxruntime's CUDA provider loads, else CPU.")
def main(**options) -> None:
    """Draw COUNT handwritten images of DIGIT and write them as a PNG grid or an npy array.

    Prints the path of the file written.
    """
    from cgan_runtime.signals import stop_like_ctrl_c, stopped_exit_code
    from cgan_runtime.streams import note

    stop_like_ctrl_c()  # SIGTERM and SIGHUP too: the writers remove their temporary file
    try:
        _draw(**options)
    except KeyboardInterrupt:
        note("Aborted!")
        raise click.exceptions.Exit(stopped_exit_code()) from None


def _draw(digit: int, count: int, seed: int | None, out_name: str | None, force: bool,
          nrow: int | None, output_format: str | None, model_path: Path | None, device: str) -> None:
    import numpy as np

    from cgan_runtime.generator import CHUNK_SIZE, DigitGenerator, ModelError
    from cgan_runtime.images import default_nrow, tile, write_npy, write_png
    from cgan_runtime.output_checks import OutputError, check_output_path, check_output_size
    from cgan_runtime.providers import DeviceError
    from cgan_runtime.streams import print_or_exit

    if out_name is not None and out_name.endswith(("/", os.sep)):  # Path() would drop the slash
        raise click.BadParameter(f"{out_name} names a folder; give a file name", param_hint="--out")
    out_path = Path(out_name) if out_name is not None else None
    if output_format is None:
        output_format = "npy" if out_path is not None and out_path.suffix == ".npy" else "png"
    if out_path is None:
        out_path = Path(f"digits_{digit}.{output_format}")
    nrow = nrow or default_nrow(count)
    try:
        check_output_path(out_path, force)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    try:
        generator = DigitGenerator(model_path, device=device, one_shot=count <= CHUNK_SIZE)
    except (ModelError, DeviceError) as error:
        raise click.ClickException(str(error)) from error
    last_digit = generator.info.num_classes - 1
    if not 0 <= digit <= last_digit:
        raise click.BadParameter(f"{digit} is not a digit in 0-{last_digit}", param_hint="--digit")
    try:
        check_output_size(count, generator.info.image_size, output_format, nrow, out_path.parent)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--count") from error
    chunks = generator.sample_chunks(digit, count, seed)
    if count > CHUNK_SIZE:  # one chunk is too quick for a bar, and tqdm's import is not free
        chunks = _with_progress(chunks, count)
    try:
        # Without --force the file is published only if its name is still free at the very end.
        if output_format == "npy":
            size = generator.info.image_size
            write_npy(out_path, chunks, count, (size, size), replace=force)
        else:
            write_png(out_path, tile(np.concatenate(list(chunks)), nrow), replace=force)
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    except FileExistsError as error:
        raise click.ClickException(f"{out_path} was created while this run worked; nothing written "
                                   "(add --force to replace it)") from error
    except OSError as error:
        raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from error
    print_or_exit(str(out_path), f"wrote {out_path}", "its path")


def _with_progress(chunks, count: int):
    """chunks, with a progress bar on stderr once the run has taken more than a second."""
    from tqdm import tqdm

    from cgan_runtime.streams import stderr

    with tqdm(total=count, unit="img", delay=PROGRESS_DELAY_SECONDS, mininterval=1.0, leave=False,
              file=stderr(), dynamic_ncols=True) as bar:
        for chunk in chunks:
            yield chunk
            bar.update(len(chunk))
