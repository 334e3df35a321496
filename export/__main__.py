"""python -m export: ship a trained checkpoint to models/ after proving the ONNX export."""

from __future__ import annotations

from pathlib import Path

import click

from cgan_train.checkpoint import CheckpointError
from export.ship import ship
from export.verify import PARITY_TOLERANCE, ExportVerificationError


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=Path), required=True,
              help="A finished training checkpoint (or models/cgan_generator.pt).")
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("models"),
              show_default=True)
def main(checkpoint_path: Path, out_dir: Path) -> None:
    """Export the generator to ONNX, check it, prove parity with torch, then write OUT_DIR."""
    try:
        shipped = ship(checkpoint_path, out_dir)
    except (CheckpointError, ExportVerificationError) as error:
        raise click.ClickException(f"export failed, nothing written: {error}") from error
    click.echo("onnx.checker: passed")
    for batch_size, difference in shipped.parity.items():
        click.echo(f"parity N={batch_size:<5} max|torch - onnxruntime| = {difference:.2e} "
                   f"(<= {PARITY_TOLERANCE:g})")
    agreement = shipped.int8_agreement
    click.echo(f"int8 form: |int8 - fp32| mean {agreement['mean']:.4f} (worst digit "
               f"{agreement['worst_digit_mean']:.4f}), max {agreement['max']:.3f} over 1,000 images "
               "(output range [-1, 1])")
    click.echo(f"wrote {shipped.onnx_path} ({shipped.model_version}), {shipped.int8_path} (bundled by "
               "the runtime) and the model card")


if __name__ == "__main__":
    main()
