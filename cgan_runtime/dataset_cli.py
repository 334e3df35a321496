"""cgan-dataset: a labelled data set of generated digits, for training other models."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_runtime.cli_output import Command
from cgan_runtime.providers import DEVICES

EXAMPLES = """\b
Examples:
  cgan-dataset --per-digit 6000 --test-per-digit 1000 --out synthetic-mnist
        MNIST's IDX files (train-images-idx3-ubyte.gz, t10k-..., SHA256SUMS), as
        `cgan-train --data-dir` reads them (and torchvision's MNIST, from MNIST/raw, unzipped)
  cgan-dataset --per-digit 1000 --format folder --out digits     digits/0/*.png ... digits/9/*.png
  cgan-dataset --per-digit 500 --format npz --out digits.npz      x uint8 [N, 28, 28], y uint8 [N]
  cgan-dataset --per-digit 100000 --format parquet --out digits-hf --workers 2
        Hugging Face's layout: load_dataset("parquet", data_dir="digits-hf")
  cgan-dataset --per-digit 100000 --format webdataset --out shards --engine ray --ray-address auto
  cgan-dataset ... --resume                                      finish a stopped run's set
"""

DEFAULT_RAY_ACTORS = 2


@click.command(cls=Command, epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
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
    help="The folder to create, or the .npz file. An existing one is refused unless --force.",
)
@click.option(
    "--format",
    "dataset_format",
    type=click.Choice(["idx", "folder", "npz", "parquet", "webdataset"]),
    default=None,
    help="idx: MNIST's gzip IDX files; folder: a folder of PNGs per digit; npz: arrays x and y; "
    "parquet: Hugging Face's layout (data/*.parquet, a dataset card); webdataset: tar shards of "
    ".png and .cls. Default: npz for an --out ending in .npz, else idx.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**64 - 1),
    default=0,
    show_default=True,
    help="The same seed and model give the same set, whatever the engine and workers.",
)
@click.option(
    "--test-per-digit",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="A test split too, of this many images of every digit (idx: t10k-* files, which "
    "torchvision's MNIST needs beside train-*; folder: OUT/train and OUT/test; npz: "
    "x_test and y_test; parquet and webdataset: test-* shards).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1, max=1_000_000),
    default=10_000,
    show_default=True,
    help="Images per shard: a parquet or webdataset file each, and for every format the unit of work "
    "a worker takes and --resume keeps (the other formats' files do not depend on it).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Local worker processes sharing the shards (default 1: this process); with --engine ray, "
    f"Ray actors (default {DEFAULT_RAY_ACTORS}).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="local: this machine; ray: Ray Data, on the cluster --ray-address names (pip install "
    "'cgan-runtime[ray]'; --out must be on storage every node sees).",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --engine ray: the cluster to join (ray.init's address: auto, or ray://HEAD:10001). "
    "Default: a local Ray for this run, on loopback.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Finish the set a stopped or failed run left: its shards whose files still match their "
    "digests are kept. Without it, such a set is started over.",
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
    shard_size: int,
    workers: int | None,
    engine: str,
    ray_address: str | None,
    resume: bool,
    force: bool,
    model_path: Path | None,
    device: str,
) -> None:
    from cgan_runtime.cli_output import load_generator, publish
    from cgan_runtime.dataset_engines import WorkerError
    from cgan_runtime.dataset_plan import check_num_classes
    from cgan_runtime.datasets import DatasetBusy, ResumeMismatch, is_dataset_folder, write_dataset

    out = Path(out_name)
    npz_name = out.suffix.lower() == ".npz"
    if dataset_format is None:
        dataset_format = "npz" if npz_name else "idx"
    elif npz_name != (dataset_format == "npz"):
        raise click.BadParameter(
            f"{out} and --format {dataset_format}: an npz set is a file named .npz, the others are "
            "folders; give one or make them agree",
            param_hint="--out",
        )
    _check_extras(dataset_format, engine, ray_address)
    _check_target(out, dataset_format, force, is_dataset_folder)
    chosen = _engine(engine, workers, ray_address)
    generator = load_generator(model_path, device, one_shot=False)
    try:
        check_num_classes(generator.info.num_classes)
    except ValueError as error:
        raise click.ClickException(f"{generator.model_path}: {error}") from None
    total = (per_digit + test_per_digit) * generator.info.num_classes
    with _progress(total) as bar:

        def shards_done(done: int, count: int) -> None:
            bar.set_description_str(f"{done}/{count} shards", refresh=False)

        try:
            publish(
                out,
                lambda: write_dataset(
                    generator,
                    out,
                    dataset_format,
                    per_digit,
                    seed,
                    test_per_digit,
                    force,
                    progress=bar.update,
                    shard_size=shard_size,
                    engine=chosen,
                    resume=resume,
                    on_shard=shards_done,
                ),
            )
        except (DatasetBusy, WorkerError) as error:
            raise click.ClickException(str(error)) from None
        except ResumeMismatch as error:
            raise click.BadParameter(str(error), param_hint="--resume") from None
        except KeyboardInterrupt:
            bar.close()  # the bar's line cleared first: the note starts a line of its own
            _say_what_is_kept(out)
            raise


def _engine(engine: str, workers: int | None, ray_address: str | None):
    from cgan_runtime.dataset_engines import LocalProcesses

    if engine == "ray":
        from cgan_runtime.dataset_ray import RayEngine

        return RayEngine(workers or DEFAULT_RAY_ACTORS, ray_address)
    if ray_address is not None:
        raise click.UsageError("--ray-address is for --engine ray")
    return LocalProcesses(workers) if workers and workers > 1 else None


def _check_extras(dataset_format: str, engine: str, ray_address: str | None) -> None:
    """The optional packages a choice needs, or one line saying how to get them."""
    import importlib.util

    needs = []
    if dataset_format == "parquet":
        needs.append(("pyarrow", "--format parquet", "parquet"))
    if engine == "ray":
        needs.append(("ray", "--engine ray", "ray"))
    for module, what, extra in needs:
        if importlib.util.find_spec(module) is None:
            raise click.UsageError(f"{what} needs {module}: pip install 'cgan-runtime[{extra}]'")


def _say_what_is_kept(out: Path) -> None:
    from cgan_runtime.datasets import logged_shards, unfinished_folder
    from cgan_runtime.streams import note

    folder = unfinished_folder(out)
    kept = len(logged_shards(folder))
    if kept:
        note(
            f"cgan-dataset: {kept} finished shards are kept in {folder}; "
            "the same command with --resume finishes the set"
        )


def _check_target(out: Path, dataset_format: str, force: bool, is_dataset_folder) -> None:
    import os

    from cgan_runtime.output_checks import OutputError, check_output_folder

    here = Path.cwd().resolve()
    if out.name in ("", ".", "..") or out.resolve() in (here, *here.parents):
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
