"""cgan-train: the command line of the training side (a thin layer over train.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import click

from cgan_runtime.cli_output import run_command
from cgan_runtime.providers import DEVICES
from cgan_runtime.streams import first_line
from cgan_train.config import AUGMENTATIONS, DISCRIMINATORS, MAX_WIDTH
from cgan_train.quality_bar import MAX_ACCURACY_DROP, MAX_FID_INCREASE
from cgan_train.recipes import DEFAULT_RECIPE, DESIGN_NAMES, RECIPES, recipe_settings

DEFAULT_DOWNLOAD_DIR = Path.home() / ".cache" / "cgan" / "mnist"
TORCH_SEED = click.IntRange(min=0, max=2**64 - 1)  # what torch.manual_seed takes
# The train flags that override one value of the recipe (cgan_train/recipes.py) or of the config.
RECIPE_OPTIONS = (
    "design",
    "epochs",
    "batch_size",
    "lr",
    "beta1",
    "loss",
    "ema_decay",
    "lr_decay_epochs",
    "class_loss_weight",
    "dropout",
    "discriminator",
    "match_weight",
    "mismatch_weight",
    "r1_gamma",
    "augment",
    "minibatch_std",
    "mode_seeking_weight",
    "twin_classifier",
    "generator_width",
    "discriminator_width",
    "discriminator_lr_scale",
    "centring_weight",
    "extent_weight",
)
SIGNAL_EXIT_BASE = 128  # the shell's code for a run stopped by signal N is 128 + N: 130 for Ctrl-C


class TrainingCommands(click.Group):
    """cgan-train's commands. `export` is defined in the export package and imported only when
    asked for (or listed): the training side itself never imports the export side."""

    ELSEWHERE = {
        "export": "cgan_export.cli:export_command",
        "triton-repository": "cgan_export.triton_repository:triton_command",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.ELSEWHERE])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.ELSEWHERE:
            module, attribute = self.ELSEWHERE[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)


@click.group(cls=TrainingCommands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="cgan-runtime", prog_name="cgan-train")
def cli() -> None:
    """Train the cgan generator on MNIST (the digit label is the condition)."""


@cli.command("train")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Folder of MNIST IDX files (raw or .gz). Default: download with torchvision "
    f"into {DEFAULT_DOWNLOAD_DIR}.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/cgan"),
    show_default=True,
    help="Folder for checkpoint.pt and the per-epoch sample grids.",
)
@click.option(
    "--recipe",
    type=click.Choice(list(RECIPES)),
    default=DEFAULT_RECIPE,
    show_default=True,
    help="shipped: the recipe of the model we ship; seed: the seed tutorial's design, the "
    "baseline. The flags below override single values of it.",
)
@click.option(
    "--design", type=click.Choice(DESIGN_NAMES), default=None, help="Network design. Default: the recipe's."
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Total epochs; with --resume, where to stop. Default: the recipe's.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Default: the recipe's.")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Default: the recipe's."
)
@click.option(
    "--beta1",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=None,
    help="Adam's beta1, for both networks. Default: the recipe's.",
)
@click.option(
    "--loss",
    type=click.Choice(["bce", "hinge"]),
    default=None,
    help="Adversarial loss: binary cross-entropy or hinge. Default: the recipe's.",
)
@click.option(
    "--ema-decay",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=None,
    help="Keep a moving average of the generator's weights with this decay, and ship it "
    "(0 = none). Default: the recipe's.",
)
@click.option(
    "--lr-decay-epochs",
    type=click.IntRange(min=0),
    default=None,
    help="Lower the learning rate linearly towards zero over the last N epochs (0 = constant). "
    "Default: the recipe's.",
)
@click.option(
    "--class-loss-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of an auxiliary digit classifier's loss (AC-GAN; conv design; 0 = none). "
    "Default: the recipe's.",
)
@click.option(
    "--dropout",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=None,
    help="Dropout in the mlp design's discriminator. Default: the recipe's (0.4).",
)
@click.option(
    "--discriminator",
    type=click.Choice(DISCRIMINATORS),
    default=None,
    help="joint: one network judges image and label; two-net: one judges whether the image is "
    "real and embeds it, another whether embedding and label match. Default: joint.",
)
@click.option(
    "--match-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="two-net: the weight of the match score in both networks' losses. Default: 1.",
)
@click.option(
    "--mismatch-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the wrong-label term: a real image with a wrong label must score low "
    "(0 = none). Default: the recipe's (0).",
)
@click.option(
    "--r1-gamma",
    type=click.FloatRange(min=0),
    default=None,
    help="The R1 gradient penalty's weight on real images (0 = none). Default: the recipe's.",
)
@click.option(
    "--augment",
    default=None,
    help="DiffAugment policies the discriminator sees real and generated digits through, "
    f"comma-separated from {', '.join(AUGMENTATIONS)} ('' = none). Default: the recipe's.",
)
@click.option(
    "--minibatch-std",
    type=click.IntRange(min=0),
    default=None,
    help="1: the discriminator sees the batch's spread as one more channel; N: the spread within "
    "groups of N images (N divides the batch size; StyleGAN's is 4). Default: the recipe's.",
)
@click.option(
    "--mode-seeking-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of the generator's diversity term (mode seeking; 0 = none). Default: the recipe's.",
)
@click.option(
    "--twin-classifier",
    type=click.IntRange(0, 1),
    default=None,
    help="1: a twin classifier learns generated digits and the generator makes it fail (TAC-GAN), "
    "against the classifier's pull towards one typical hand. Default: the recipe's.",
)
@click.option(
    "--generator-width",
    type=click.IntRange(1, MAX_WIDTH),
    default=None,
    help="The conv generator's channels at 14x14 (its cost per image at run time). Default: the recipe's.",
)
@click.option(
    "--discriminator-width",
    type=click.IntRange(1, MAX_WIDTH),
    default=None,
    help="The conv discriminator's channels at 14x14. Default: the recipe's.",
)
@click.option(
    "--discriminator-lr-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="The discriminator's learning rate as a multiple of --lr (two time-scale updates). "
    "Default: the recipe's (1).",
)
@click.option(
    "--centring-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of a penalty on generated digits whose centre of mass lies outside the range of the "
    "real training digits' (MNIST centres every digit's mass; 0 = none). Default: the recipe's (0).",
)
@click.option(
    "--extent-weight",
    type=click.FloatRange(min=0),
    default=None,
    help="Weight of a penalty on generated digits whose extent lies outside the range of the real "
    "training digits' (MNIST fits every digit to one box; 0 = none). Default: the recipe's (0).",
)
@click.option(
    "--norm-stat-samples",
    type=click.IntRange(min=1),
    default=None,
    help="Generated images over which the moving average's batch-norm statistics are measured "
    "each epoch. Default: 10,000.",
)
@click.option("--seed", type=TORCH_SEED, default=0, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from OUT/checkpoint.pt (its config wins; --epochs may extend it).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
def train_command(
    ctx: click.Context,
    data_dir: Path | None,
    out_dir: Path,
    recipe: str,
    design: str | None,
    epochs: int | None,
    batch_size: int | None,
    lr: float | None,
    beta1: float | None,
    loss: str | None,
    ema_decay: float | None,
    lr_decay_epochs: int | None,
    class_loss_weight: float | None,
    dropout: float | None,
    discriminator: str | None,
    match_weight: float | None,
    mismatch_weight: float | None,
    r1_gamma: float | None,
    augment: str | None,
    minibatch_std: int | None,
    mode_seeking_weight: float | None,
    twin_classifier: int | None,
    generator_width: int | None,
    discriminator_width: int | None,
    discriminator_lr_scale: float | None,
    centring_weight: float | None,
    extent_weight: float | None,
    norm_stat_samples: int | None,
    seed: int,
    device: str,
    resume: bool,
    quiet: bool,
) -> None:
    """Train (or resume) a run; every epoch writes a sample grid and a checkpoint."""
    from cgan_runtime.streams import note, print_or_exit
    from cgan_train.checkpoint import CheckpointError
    from cgan_train.data import DataError
    from cgan_train.train import (
        CHECKPOINT_NAME,
        RunFolderBusy,
        TrainingDiverged,
        TrainingInterrupted,
        hold_run_folder,
        resolve_device,
    )

    try:
        torch_device = resolve_device(device)
        checkpoint = out_dir / CHECKPOINT_NAME
        with hold_run_folder(out_dir):
            trainer, digits = _start_or_resume(ctx, checkpoint, torch_device)
            note(
                f"training {trainer.config.design} on {len(digits)} images, {torch_device}, "
                f"epochs {trainer.epoch + 1}..{trainer.config.epochs} -> {out_dir}"
            )
            trainer.fit(digits, out_dir, show_progress=not quiet)
    except TrainingInterrupted as error:
        note(str(error))
        raise click.exceptions.Exit(SIGNAL_EXIT_BASE + error.signal_number) from error
    except (DataError, CheckpointError, TrainingDiverged, RunFolderBusy, ValueError) as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:  # a full disk, a folder that vanished: the previous files are intact
        raise click.ClickException(f"cannot write in {out_dir}: {error.strerror or error}") from error
    print_or_exit(str(checkpoint), f"saved {checkpoint}", "its path")


def _start_or_resume(ctx: click.Context, checkpoint: Path, torch_device):
    """The run to train, new or resumed from checkpoint as the options say, and its training data."""
    from dataclasses import replace

    from cgan_train.config import TrainConfig
    from cgan_train.data import download_mnist, load_mnist
    from cgan_train.train import Trainer, git_commit

    params = ctx.params
    resume, epochs = params["resume"], params["epochs"]
    if resume:
        trainer = Trainer.resume(checkpoint, torch_device)
        _refuse_changed_options(ctx, trainer.config)
        if _explicit(ctx, "epochs") and epochs != trainer.config.epochs:
            if trainer.config.lr_decay_epochs:
                raise click.UsageError(
                    f"--epochs {epochs}: this run's learning rate decays over its last "
                    f"{trainer.config.lr_decay_epochs} of {trainer.config.epochs} epochs, so "
                    "its length cannot change; drop --epochs to resume"
                )
            trainer.config = replace(trainer.config, epochs=epochs)
    elif checkpoint.exists():
        raise click.UsageError(f"{checkpoint} exists: add --resume to continue it, or choose another --out")
    digits = load_mnist(params["data_dir"] or download_mnist(DEFAULT_DOWNLOAD_DIR), "train")
    if not resume:
        overrides = {name: params[name] for name in RECIPE_OPTIONS if params[name] is not None}
        samples = params["norm_stat_samples"]
        extra = {"norm_stat_samples": samples} if samples is not None else {}
        config = TrainConfig(**recipe_settings(params["recipe"], overrides), seed=params["seed"], **extra)
        provenance = {
            "data_sha256": digits.sha256,
            "git_commit": git_commit(),
            "torch_version": _torch_version(),
            "recipe": params["recipe"],
        }
        trainer = Trainer(config, torch_device, provenance)
    elif trainer.provenance["data_sha256"] != digits.sha256:
        raise click.ClickException(
            f"--resume: this training data (SHA-256 {digits.sha256[:12]}...) is not the data "
            f"the run started on ({trainer.provenance['data_sha256'][:12]}...)"
        )
    return trainer, digits


@cli.command("judge")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help=f"Folder of MNIST IDX files. Default: download into {DEFAULT_DOWNLOAD_DIR}.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    default=Path("models/judge.pt"),
    show_default=True,
    help="Where to write the judge's weights.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=6, show_default=True)
@click.option("--seed", type=TORCH_SEED, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def judge_command(data_dir: Path | None, out_path: Path, epochs: int, seed: int, quiet: bool) -> None:
    """Train the judge: the MNIST classifier that `evaluate` scores generators with."""
    from cgan_runtime.streams import note, print_or_exit
    from cgan_train.data import DataError, download_mnist, load_mnist
    from cgan_train.judge import save_judge, train_judge

    _check_output_path(out_path, "--out")
    try:
        data_dir = data_dir or download_mnist(DEFAULT_DOWNLOAD_DIR)
        train, test = load_mnist(data_dir, "train"), load_mnist(data_dir, "test")
    except DataError as error:
        raise click.ClickException(str(error)) from error
    judge, accuracy = train_judge(train, test, epochs=epochs, seed=seed, show_progress=not quiet)
    note(f"judge test accuracy: {accuracy:.2%} on {len(test)} MNIST test images")
    try:
        save_judge(out_path, judge, accuracy, train, test)
    except OSError as error:
        raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from error
    print_or_exit(str(out_path), f"saved {out_path}", "its path")


@cli.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--judges",
    "judges_path",
    type=click.Path(path_type=Path),
    default=Path("models/judges.json"),
    show_default=True,
    help="The judges' manifest: their files and SHA-256 digests (make judges writes it).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help=f"Folder of MNIST IDX files. Default: download into {DEFAULT_DOWNLOAD_DIR}.",
)
@click.option(
    "--json",
    "--out",
    "json_path",
    type=click.Path(path_type=Path),
    default=Path("evaluation.json"),
    show_default=True,
    help="Where to write the report as JSON.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="The edit loop: one draw of samples and one seed per CAS recipe (the full evaluation's "
    "first), a few minutes; too few for the rule of docs/how-it-works.md (Judging a recipe).",
)
@click.option("--samples-per-digit", type=click.IntRange(min=10), default=1000, show_default=True)
@click.option(
    "--draws",
    type=click.IntRange(min=1),
    default=None,
    help="Draws of samples (and of real subsets) to measure FID, precision and recall over. "
    "Default: 3, or 1 with --quick.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Draw r samples digit d with seed SEED + 1000 r + d.",
)
@click.option(
    "--device",
    type=click.Choice(DEVICES),
    default="cpu",
    show_default=True,
    help="Where onnxruntime samples the model.",
)
@click.option(
    "--cas-per-digit",
    type=click.IntRange(min=0),
    default=1000,
    show_default=True,
    help="Generated images of every digit to train each classification accuracy score recipe on "
    "(0: no CAS, which takes most of the time).",
)
@click.option(
    "--cas-seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Seeds per CAS recipe. Default: 3, or 1 with --quick.",
)
@click.option(
    "--real-baselines",
    "real_baselines_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("models/real_baselines.json"),
    show_default=True,
    help="Real MNIST's figures, which do not depend on the model (make real-baselines): the "
    "judges' ceilings and the CAS recipes trained on real images; those made with other settings "
    "are computed here.",
)
@click.option(
    "--baseline",
    "baseline_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The report of the fp32 export MODEL was made from: fail unless MODEL "
    f"clears the bar against it (accuracy within {100 * MAX_ACCURACY_DROP:.1f} points, FID within "
    f"{100 * MAX_FID_INCREASE:.0f}%, nothing worse beyond the spread).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes that judge and train the CAS classifiers, each on one thread (1: in this "
    "process). The report is the same whatever the number. Default: one per CPU.",
)
def evaluate_command(
    model: Path,
    judges_path: Path,
    data_dir: Path | None,
    json_path: Path,
    quick: bool,
    samples_per_digit: int,
    draws: int | None,
    seed: int,
    device: str,
    cas_per_digit: int,
    cas_seeds: int | None,
    real_baselines_path: Path,
    baseline_path: Path | None,
    workers: int | None,
) -> None:
    """Score the ONNX generator MODEL with every judge, beside real MNIST.

    Prints, in each judge's feature space, conditional accuracy, FID, precision and recall,
    overall (and per digit for the primary judge), over several draws of samples, for the model
    and for as many real training images (the ceiling); and the classification accuracy score of
    several classifier recipes, each over several seeds: trained on the model's digits against
    trained on real ones, both tested on real test images. Writes them as JSON.
    """
    import json
    import time

    from cgan_runtime.files import atomic_path
    from cgan_runtime.generator import DigitGenerator, ModelError
    from cgan_runtime.providers import DeviceError
    from cgan_runtime.streams import note, print_or_exit
    from cgan_train.cas import CAS_SEEDS
    from cgan_train.data import DataError, download_mnist
    from cgan_train.evaluate import (
        DRAWS,
        QUICK_CAS_SEEDS,
        QUICK_DRAWS,
        EvaluationError,
        check_made_from,
        compare_to_fp32,
        evaluate,
        format_report,
    )
    from cgan_train.judge import JudgeError
    from cgan_train.workers import default_workers

    start = time.monotonic()
    _check_output_path(json_path, "--json")
    baseline = _read_report(baseline_path) if baseline_path else None
    try:
        if baseline:  # a model of another export is refused now, not after minutes of evaluation
            check_made_from(DigitGenerator(model, device=device).info.model_version, baseline)
        report = evaluate(
            model,
            judges_path,
            data_dir or download_mnist(DEFAULT_DOWNLOAD_DIR),
            per_digit=samples_per_digit,
            seed=seed,
            device=device,
            cas_per_digit=cas_per_digit,
            draws=draws or (QUICK_DRAWS if quick else DRAWS),
            cas_seeds=cas_seeds or (QUICK_CAS_SEEDS if quick else CAS_SEEDS),
            real_baselines_path=real_baselines_path,
            workers=workers or default_workers(),
            progress=note,
        )
    except (ModelError, DeviceError, DataError, JudgeError, EvaluationError) as error:
        raise click.ClickException(str(error)) from error
    try:
        with atomic_path(json_path) as temporary:
            temporary.write_text(json.dumps(report, indent=1) + "\n")
    except OSError as error:
        raise click.ClickException(f"cannot write {json_path}: {error.strerror or error}") from error
    note(f"wrote {json_path}; evaluated {model} in {time.monotonic() - start:.0f} s")
    try:  # after the report is written: a comparison that cannot be made loses no evaluation
        comparison, clears = compare_to_fp32(report, baseline) if baseline else (None, True)
    except EvaluationError as error:
        raise click.ClickException(str(error)) from error
    print_or_exit(
        format_report(report) + (f"\n{comparison}" if comparison else ""), f"wrote {json_path}", "the report"
    )
    if not clears:
        raise click.ClickException(
            f"{model} does not clear the bar against {baseline_path}: the runtime keeps the fp32 export "
            "(make bundle; BUNDLE=fp32 bundles it in any case)"
        )


def _read_report(path: Path) -> dict:
    """A report written by `cgan-train evaluate --json`, or one line saying it is not one."""
    import json

    from cgan_train.config import is_finite_number

    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: JSON nested too deep
        raise click.ClickException(f"cannot read the report {path}: {first_line(error)}") from error
    keys = {"model_version", "samples_per_digit", "sample_seeds", "reference", "generated"}
    try:
        overall = report["generated"]["overall"]
        readable = (
            keys <= report.keys()
            and isinstance(report["model_version"], str)
            and all(is_finite_number(overall[name]) for name in ("accuracy", "fid"))
        )
    except (KeyError, TypeError):
        readable = False
    if not readable:
        raise click.ClickException(f"{path} is not a report of cgan-train evaluate --json")
    return report


def _refuse_changed_options(ctx: click.Context, config) -> None:
    """On resume the checkpoint's config wins: an explicit flag that disagrees is a mistake."""
    for option in (*RECIPE_OPTIONS, "norm_stat_samples", "seed"):
        if option == "epochs":  # --epochs may extend a run; train_command checks it
            continue
        if _explicit(ctx, option) and ctx.params[option] != getattr(config, option):
            raise click.UsageError(
                f"--{option.replace('_', '-')} {ctx.params[option]} differs from the checkpoint's "
                f"{getattr(config, option)}; drop it to resume"
            )


def _check_output_path(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written before the long work, not after it (an
    existing file is replaced: these outputs are regenerated, not hand-made)."""
    from cgan_runtime.output_checks import OutputError, check_output_path

    try:
        check_output_path(path, force=True)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint=option) from error


def _explicit(ctx: click.Context, option: str) -> bool:
    return ctx.get_parameter_source(option) == click.core.ParameterSource.COMMANDLINE


def _torch_version() -> str:
    import torch

    return str(torch.__version__)  # a TorchVersion object would not load with weights_only


def main() -> None:
    if importlib.util.find_spec("torch") is None:
        click.echo(
            "cgan-train: PyTorch is not installed; install the training extra: "
            "pip install 'cgan-runtime[train]'",
            err=True,
        )
        sys.exit(1)
    run_command(cli)
