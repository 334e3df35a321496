"""How a model frames its digits beside MNIST: the spread of their centres of mass, their extent, and
the share outside the range real training digits span (cgan_train/framing.py, docs/experiments.md).

    python -m benchmarks.framing --data-dir MNIST MODEL.onnx [MODEL.onnx ...] [--per-digit N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from cgan_runtime.generator import DigitGenerator, ModelError
from cgan_runtime.streams import print_result
from cgan_train.data import DataError, load_mnist
from cgan_train.evaluate import sample_digits
from cgan_train.framing import FramingBand, framing

SAMPLE_SEED = 20261206  # digit d draws with seed SAMPLE_SEED + d: the same digits on every run
# The figures are computed in float32 in one piece: 10,000 of every digit take about 3 GB.
MAX_PER_DIGIT = 10_000


def framing_summary(images: torch.Tensor, band: FramingBand) -> dict:
    """uint8 [N, H, W] -> the centres' spread (row, column), the extent's 5th, 50th and 95th
    percentiles, and the share of images outside band in each figure and in any."""
    figures = framing(images.unsqueeze(1).float().div(127.5).sub(1.0))
    outside = (figures < band.low) | (figures > band.high)
    extent = torch.quantile(figures[:, 2], torch.tensor([0.05, 0.5, 0.95]))
    return {
        "centre_spread": figures[:, :2].std(dim=0).tolist(),
        "extent": extent.tolist(),
        "outside": outside.float().mean(dim=0).tolist(),
        "outside_centre": outside[:, :2].any(dim=1).float().mean().item(),
    }


def model_images(path: Path, per_digit: int) -> torch.Tensor:
    images, _ = sample_digits(DigitGenerator(path), per_digit, seed=SAMPLE_SEED)
    return torch.from_numpy(images)


def row(name: str, summary: dict, width: int) -> str:
    rows, columns = summary["centre_spread"]
    low, middle, high = summary["extent"]
    return (
        f"{name:<{width}} {rows:>6.3f} {columns:>6.3f}   {low:6.2f} {middle:6.2f} {high:6.2f}"
        f"   {summary['outside_centre']:>8.1%} {summary['outside'][2]:>8.1%}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", type=Path, nargs="+", help="ONNX generators (cgan_generator*.onnx)")
    parser.add_argument("--data-dir", type=Path, required=True, help="the MNIST folder (IDX files)")
    parser.add_argument("--per-digit", type=int, default=1000, help="digits of every class a model draws")
    args = parser.parse_args(argv)
    if not 2 <= args.per_digit <= MAX_PER_DIGIT:
        sys.exit(f"framing: --per-digit must be from 2 to {MAX_PER_DIGIT:,}, not {args.per_digit}")
    try:
        train = load_mnist(args.data_dir, "train")
    except DataError as error:
        sys.exit(f"framing: {error}")
    band = FramingBand.of_real(train.images)
    real = f"real training digits ({len(train)})"
    width = max(len(real), *(len(str(path)) for path in args.models))
    lines = [
        f"{'':<{width}} {'centre spread':>13}   {'extent 5/50/95%':>20}   {'outside the real band':>17}",
        f"{'':<{width}} {'rows':>6} {'cols':>6}   {'':>20}   {'centre':>8} {'extent':>8}",
        row(real, framing_summary(train.images, band), width),
    ]
    for path in args.models:
        try:
            images = model_images(path, args.per_digit)
        except ModelError as error:
            sys.exit(f"framing: {error}")
        lines.append(row(str(path), framing_summary(images, band), width))
    failure = print_result("\n".join(lines))
    if failure:
        sys.exit(f"framing: cannot print the table: {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
