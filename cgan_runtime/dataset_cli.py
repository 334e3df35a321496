"""cgan-dataset: a labelled data set of generated digits, for training other models."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_runtime.providers import DEVICES

EXAMPLES = """\b
Examples:
  cgan-dataset --per-digit 6000 --test-per-digit 1000 --out synthetic-mnist
        MNIST's IDX files (train-images-idx3-ubyte.gz, t10k-..., SHA256SUMS), as
        `cgan-train --data-dir` reads them (and torchvision's MNIST, from MNIST/raw, unzipped)
  cgan-dataset --per-digit 1000 --format folder --out digits     digits/0/*.png ... digits/9/*.png
  cgan-dataset --per-digit 500 --format npz --out digits.npz      x uint8 [N, 28, 28], y uint8 [N]
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgan-runtime", prog_name="cgan-dataset")
@click.option(
    "--per-digit",
    type=click.IntRange(min=1),
    required=True,
    help="Images of every digit; the set holds per-digit x the model's digits, shuffled.",
)
@click.option(
    "--out",
    "out_name",
    type=click.Path(),
    required=True,
    help="The folder to create (idx, folder), or the .npz file. An existing one is refused unless --force.",
)
@click.option(
    "--format",
    "dataset_format",
    type=click.Choice(["idx", "folder", "npz"]),
    default=None,
    help="idx: MNIST's gzip IDX files; folder: a folder of PNGs per digit; npz: arrays x and "
    "y. Default: npz for an --out ending in .npz, else idx.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="The same seed and model give the same set.",
)
@click.option(
    "--test-per-digit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="A test split too, of this many images of every digit (idx: t10k-* files, which "
    "torchvision's MNIST needs beside train-*; folder: OUT/train and OUT/test; npz: "
    "x_test and y_test).",
)
@click.option("--force", is_flag=True, help="Replace an existing .npz file, or a folder this command wrote.")
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path),
    default=None,
    help="An ONNX model with the cgan interface. Default: the bundled model.",
)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
def main(**options) -> None:
    """Write a balanced, shuffled, labelled set of generated digits: PER_DIGIT of each.

    Prints the path written. The set appears whole or not at all.
    """
    from cgan_runtime.cli_output import run_stoppably

    run_stoppably(_write, **options)


def _write(
    per_digit: int,
    out_name: str,
    dataset_format: str | None,
    seed: int,
    test_per_digit: int,
    force: bool,
    model_path: Path | None,
    device: str,
) -> None:
    from cgan_runtime.cli_output import load_generator, publish
    from cgan_runtime.datasets import is_dataset_folder, write_dataset

    out = Path(out_name)
    if dataset_format is None:
        dataset_format = "npz" if out.suffix == ".npz" else "idx"
    _check_target(out, dataset_format, force, is_dataset_folder)
    generator = load_generator(model_path, device, one_shot=False)
    total = (per_digit + test_per_digit) * generator.info.num_classes
    with _progress(total) as bar:
        publish(
            out,
            lambda: write_dataset(
                generator, out, dataset_format, per_digit, seed, test_per_digit, force, progress=bar.update
            ),
        )


def _check_target(out: Path, dataset_format: str, force: bool, is_dataset_folder) -> None:
    import os

    from cgan_runtime.output_checks import OutputError, check_output_folder

    if out.name in ("", ".", "..") or out.resolve() == Path.cwd().resolve():
        raise click.BadParameter(
            f"{out} is the current folder or above it; name the set's own folder or file", param_hint="--out"
        )
    try:
        check_output_folder(out.parent)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    if not os.path.lexists(out):
        return
    if not force:
        raise click.BadParameter(f"{out} exists; add --force to replace it", param_hint="--out")
    if dataset_format == "npz":
        if out.is_symlink() or not out.is_file():
            raise click.BadParameter(f"{out} is not a regular file; give a new name", param_hint="--out")
    elif out.is_symlink() or not out.is_dir() or not is_dataset_folder(out):
        raise click.BadParameter(
            f"{out} is not a data set folder this command wrote; --force replaces "
            "only those: give a new name",
            param_hint="--out",
        )


def _progress(total: int):
    from tqdm import tqdm

    from cgan_runtime.streams import stderr

    return tqdm(
        total=total, unit="img", delay=1.0, mininterval=1.0, leave=False, file=stderr(), dynamic_ncols=True
    )
