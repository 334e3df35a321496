"""What every cgan-run job shares: the output file's name and checks, the model, publishing the file."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import click


def run_stoppably(job: Callable[..., None], **options) -> None:
    """Run a command's job with SIGTERM and SIGHUP handled like Ctrl-C (the writers remove their
    temporary files): a stopped run says so and exits 128 + the signal's number."""
    from cgan_runtime.signals import stop_like_ctrl_c, stopped_exit_code
    from cgan_runtime.streams import note

    stop_like_ctrl_c()
    try:
        job(**options)
    except KeyboardInterrupt:
        note("Aborted!")
        raise click.exceptions.Exit(stopped_exit_code()) from None


class Command(click.Command):
    """A click command run by run_command."""

    def main(self, *args, **kwargs):
        return run_command(super().main, *args, **kwargs)


def run_command(main: Callable, *args, **kwargs):
    """A command's main(), with what click itself prints kept in line: its errors never reach stdout
    (where a pipeline would take them for output) when stderr is closed, and --help or --version
    into a full stdout is one line and exit 1, not a traceback (a closed pipe click handles itself).
    Any other error is raised as it was."""
    from cgan_runtime.streams import note, silence_stdout

    if sys.stderr is None:  # started with stderr closed: click would print its errors on stdout
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's stderr until it exits)
    try:
        return main(*args, **kwargs)
    except OSError as error:
        innermost = error.__traceback__
        while innermost.tb_next is not None:
            innermost = innermost.tb_next
        frame = innermost.tb_frame
        if (frame.f_globals.get("__name__"), frame.f_code.co_name) != ("click.utils", "echo"):
            raise
        silence_stdout()  # the interpreter's flush at exit would fail again, with a traceback
        note(f"Error: cannot print: {error.strerror or error}")
        raise SystemExit(1) from None


OUTPUT_FORMATS = ("png", "npy")


def output_target(out_name: str | None, output_format: str | None, default_stem: str) -> tuple[Path, str]:
    """The output path and format. A suffix decides the format whatever its case (x.NPY is npy), and
    must agree with --format; a name without one takes --format, else png; a suffix that is
    neither is refused. The default name is DEFAULT_STEM.FORMAT in the current folder."""
    if out_name is not None and out_name.endswith(("/", os.sep)):  # Path() would drop the slash
        raise click.BadParameter(f"{out_name} names a folder; give a file name", param_hint="--out")
    if out_name is None:
        output_format = output_format or "png"
        return Path(f"{default_stem}.{output_format}"), output_format
    out_path = Path(out_name)
    suffix = out_path.suffix.lower().removeprefix(".")
    if not suffix:
        return out_path, output_format or "png"
    if suffix not in OUTPUT_FORMATS:
        raise click.BadParameter(
            f"{out_name}: cgan-run writes .png or .npy, not .{suffix} "
            "(a name without a suffix takes --format)",
            param_hint="--out",
        )
    if output_format is not None and output_format != suffix:
        raise click.BadParameter(
            f"{out_name} is a .{suffix} name, but --format is {output_format}; give one or make them agree",
            param_hint="--out",
        )
    return out_path, suffix


def check_target(out_path: Path, force: bool) -> None:
    from cgan_runtime.output_checks import OutputError, check_output_path

    try:
        check_output_path(out_path, force)
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint="--out") from error


def check_size(check: Callable[[], None], param_hint: str) -> None:
    """Run an output_checks size check; its OutputError becomes a usage error on param_hint."""
    from cgan_runtime.output_checks import OutputError

    try:
        check()
    except OutputError as error:
        raise click.BadParameter(str(error), param_hint=param_hint) from error


def load_generator(model_path: Path | None, device: str, one_shot: bool, threads: int | None = None):
    """The generator, its failures as one line. Where CUDA was in play (asked for, or on offer to
    auto and not what runs), one line on stderr says what really runs, in place of onnxruntime's log."""
    from cgan_runtime.generator import DigitGenerator, ModelError
    from cgan_runtime.providers import DeviceError
    from cgan_runtime.streams import note

    try:
        generator = DigitGenerator(model_path, device=device, one_shot=one_shot, threads=threads)
    except (ModelError, DeviceError) as error:
        raise click.ClickException(str(error)) from error
    report = generator.info.device
    if report.requested == "cuda" or report.fallback_reason:
        note(report.line())
    return generator


def publish(out_path: Path, write: Callable[[], None]) -> None:
    """Run write(), which writes out_path atomically, and print the path; its failures become one line.

    Without --force, write() publishes only if the name is still free at the very end."""
    from cgan_runtime.generator import ModelError
    from cgan_runtime.streams import print_or_exit

    try:
        write()
    except ModelError as error:
        raise click.ClickException(str(error)) from error
    except FileExistsError as error:
        raise click.ClickException(
            f"{out_path} was created while this run worked; nothing written (add --force to replace it)"
        ) from error
    except OSError as error:
        raise click.ClickException(f"cannot write {out_path}: {error.strerror or error}") from error
    print_or_exit(str(out_path), f"wrote {out_path}", "its path")


def print_model_info(model_path: Path | None, device: str) -> None:
    """cgan-run --info: the model's metadata, the onnxruntime installed, the device that really runs."""
    from cgan_runtime.providers import describe_onnxruntime
    from cgan_runtime.streams import print_or_exit

    generator = load_generator(model_path, device, one_shot=True)
    info, report = generator.info, generator.info.device
    lines = [
        f"model: {generator.model_path} ({info.model_version})",
        f"latent_dim {info.latent_dim}, num_classes {info.num_classes}, image_size {info.image_size}",
        *(f"{key}: {value}" for key, value in describe_onnxruntime().items()),
        f"device requested: {report.requested}",
        f"execution provider: {report.provider}",
    ]
    if report.fallback_reason:
        lines.append(f"CUDA did not load: {report.fallback_reason}")
    print_or_exit("\n".join(lines), "read the model", "its information")
