"""cgan-train triton-repository: the fp32 export and the int8 model as a Triton model repository
(`<name>/config.pbtxt` and `<name>/1/model.onnx` each), for users who serve with Triton (or with
KServe's Triton runtime) instead of cgan-serve.

The configuration is read off the model itself: its names, datatypes and sizes. Triton leaves the
batch dimension out of `dims` and cannot declare a tensor of the batch dimension alone, so labels
[N] are declared as [1] with a reshape to [] (the documented idiom): the model still sees [N], and
Triton's clients send labels as [N, 1], which cgan-serve also accepts, so one client works with both.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import click

from cgan_runtime.generator import IMAGES_OUTPUT, LABELS_INPUT, NOISE_INPUT, DigitGenerator, ModelInfo

# Model name in Triton -> the file of models/ it serves. "cgan" is the bundled model's file, under
# the name cgan-serve serves it by, so that a client needs no change between the two servers.
REPOSITORY_MODELS = {"cgan": "cgan_generator_int8.onnx", "cgan_fp32": "cgan_generator.onnx"}
WRITTEN_BY = "# Written by cgan-train triton-repository from "
MAX_BATCH_SIZE = 256  # as cgan-serve's --max-batch-size
MAX_QUEUE_SIZE = 128  # as cgan-serve's --max-queue: beyond it Triton refuses at once


@dataclass(frozen=True)
class TritonLimits:
    max_batch_size: int = MAX_BATCH_SIZE
    max_queue_delay_microseconds: int = 0  # as cgan-serve: no wait, yet what queues meanwhile batches
    max_queue_size: int = MAX_QUEUE_SIZE
    instances: int = 1


def model_config(name: str, info: ModelInfo, source: str, limits: TritonLimits = TritonLimits()) -> str:
    """config.pbtxt for a cgan generator served by Triton's onnxruntime backend."""
    size = info.image_size
    return f"""{WRITTEN_BY}{source} ({info.model_version})
name: "{name}"
platform: "onnxruntime_onnx"
max_batch_size: {limits.max_batch_size}
input [
  {{ name: "{NOISE_INPUT}" data_type: TYPE_FP32 dims: [ {info.latent_dim} ] }},
  # labels are [N] in the graph; Triton's dims leave N out and may not be empty, hence [1] -> [].
  {{ name: "{LABELS_INPUT}" data_type: TYPE_INT64 dims: [ 1 ] reshape: {{ shape: [ ] }} }}
]
output [
  {{ name: "{IMAGES_OUTPUT}" data_type: TYPE_FP32 dims: [ 1, {size}, {size} ] }}
]
dynamic_batching {{
  max_queue_delay_microseconds: {limits.max_queue_delay_microseconds}
  default_queue_policy {{ max_queue_size: {limits.max_queue_size} }}
}}
instance_group [ {{ count: {limits.instances} kind: KIND_CPU }} ]
"""


def write_triton_repository(
    models_dir: Path, out: Path, force: bool, limits: TritonLimits = TritonLimits()
) -> list[str]:
    """Write the repository into out as one set (a hidden folder renamed into place); returns the
    model names. force replaces a repository this command wrote, never another folder."""
    from cgan_runtime.files import atomic_folder

    infos = {}
    for name, file_name in REPOSITORY_MODELS.items():
        path = models_dir / file_name
        infos[name] = (path, DigitGenerator(path, device="cpu").info)  # a cgan model, or ModelError
    with atomic_folder(out, replace_if=is_triton_repository if force else None) as staging:
        for name, (path, info) in infos.items():
            (staging / name / "1").mkdir(parents=True)
            shutil.copyfile(path, staging / name / "1" / "model.onnx")
            (staging / name / "config.pbtxt").write_text(model_config(name, info, path.name, limits))
    return list(infos)


def is_triton_repository(folder: Path) -> bool:
    """Whether folder is a repository this command wrote (what --force may replace)."""
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries != sorted(REPOSITORY_MODELS):
        return False
    for name in entries:
        config = folder / name / "config.pbtxt"
        if not config.is_file() or not config.read_text(errors="replace").startswith(WRITTEN_BY):
            return False
    return True


@click.command("triton-repository", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--models",
    "models_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("models"),
    show_default=True,
    help="The folder make export writes (the fp32 export and the int8 model).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("triton-repository"),
    show_default=True,
    help="The repository folder to write; Triton's --model-repository.",
)
@click.option("--force", is_flag=True, help="Replace a repository this command wrote before.")
@click.option("--max-batch-size", type=click.IntRange(min=1), default=MAX_BATCH_SIZE, show_default=True)
@click.option("--max-queue", type=click.IntRange(min=1), default=MAX_QUEUE_SIZE, show_default=True)
@click.option(
    "--instances",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Model instances per server.",
)
def triton_command(
    models_dir: Path, out: Path, force: bool, max_batch_size: int, max_queue: int, instances: int
) -> None:
    """Write a Triton model repository: cgan (the int8 model, the one cgan-serve serves by default)
    and cgan_fp32 (the fp32 export), each with its config.pbtxt."""
    from cgan_runtime.cli_output import run_stoppably

    run_stoppably(
        _write,
        models_dir=models_dir,
        out=out,
        force=force,
        limits=TritonLimits(max_batch_size, 0, max_queue, instances),
    )


def _write(models_dir: Path, out: Path, force: bool, limits: TritonLimits) -> None:
    import os

    from cgan_runtime.generator import ModelError
    from cgan_runtime.output_checks import OutputError, check_output_folder
    from cgan_runtime.streams import print_or_exit

    try:
        check_output_folder(out.parent)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--out") from error
    if os.path.lexists(out):
        if not force:
            raise click.BadParameter(f"{out} exists; add --force to replace it", param_hint="--out")
        if out.is_symlink() or not out.is_dir() or not is_triton_repository(out):
            raise click.BadParameter(
                f"{out} is not a repository this command wrote; --force replaces only those: give a new name",
                param_hint="--out",
            )
    try:
        names = write_triton_repository(models_dir, out, force, limits)
    except ModelError as error:
        raise click.ClickException(f"{error} (make export writes {models_dir})") from error
    except OSError as error:
        raise click.ClickException(f"cannot write {out}: {error.strerror or error}") from error
    print_or_exit(f"{out}: {', '.join(names)}", f"wrote {out}", "its path")
