"""cgan-train export: ship a trained checkpoint to models/ after proving the ONNX export.

The command lives here, beside the code it runs; cgan-train loads it only when asked for it, so
the training side never imports the export side (the layers stay runtime <- train <- export).
"""

from __future__ import annotations

from pathlib import Path

import click

from cgan_export.file_set import StoppedAfterTheSet
from cgan_runtime.signals import stop_like_ctrl_c, stopped_exit_code
from cgan_runtime.streams import note, print_or_exit


@click.command("export", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(path_type=Path),
    required=True,
    help="A finished training checkpoint (or models/cgan_generator.pt).",
)
@click.option(
    "--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"), show_default=True
)
def export_command(checkpoint_path: Path, out_dir: Path) -> None:
    """Export the generator to ONNX, check it, prove parity with torch, then write OUT_DIR.

    OUT_DIR's files are written as one set: on any failure it keeps its previous files exactly.
    """
    stop_like_ctrl_c()  # SIGTERM and SIGHUP too (from the start): the set is never left half-written
    try:
        shipped = _ship(checkpoint_path, out_dir)
    except StoppedAfterTheSet:
        note(f"export stopped, but only once {out_dir} held the new export whole")
        raise click.exceptions.Exit(stopped_exit_code()) from None
    except KeyboardInterrupt:
        note(f"export stopped, {out_dir} unchanged")
        raise click.exceptions.Exit(stopped_exit_code()) from None
    from cgan_export.verify import PARITY_TOLERANCE

    lines = ["onnx.checker: passed"]
    lines += [
        f"parity N={size:<5} max|torch - onnxruntime| = {difference:.2e} (<= {PARITY_TOLERANCE:g})"
        for size, difference in shipped.parity.items()
    ]
    agreement = shipped.int8_agreement
    lines.append(
        f"int8 model: |int8 - fp32| mean {agreement['mean']:.4f} (worst digit "
        f"{agreement['worst_digit_mean']:.4f}), max {agreement['max']:.3f} over 1,000 images "
        "(output range [-1, 1])"
    )
    written = ", ".join(shipped.changed) or "nothing: it already held this export"
    lines.append(f"{out_dir} ({shipped.model_version}): wrote {written}")
    print_or_exit("\n".join(lines), f"exported into {out_dir}", "the summary")


def _ship(checkpoint_path: Path, out_dir: Path):
    """ship(), its failures as one line each. Its modules are imported here, after the signal
    handlers are in place: torch and onnx take seconds to import."""
    from cgan_export.file_set import FileSetError
    from cgan_export.ship import ship
    from cgan_export.verify import ExportVerificationError
    from cgan_train.checkpoint import CheckpointError

    try:
        return ship(checkpoint_path, out_dir)
    except (CheckpointError, ExportVerificationError) as error:
        raise click.ClickException(f"export failed, nothing written: {error}") from error
    except FileSetError as error:
        raise click.ClickException(f"export failed, {out_dir} unchanged: {error}") from error
    except OSError as error:
        where = f"{error.filename}: " if error.filename else f"into {out_dir}: "
        raise click.ClickException(
            f"export failed, {out_dir} unchanged: cannot write {where}{error.strerror or error}"
        ) from error
