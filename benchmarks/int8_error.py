"""How far an fp32 export's int8 model draws from it, as exported and with one quantization choice
changed at a time: which choice the error comes from.

    python -m benchmarks.int8_error MODEL.onnx [--write-dir DIR]

Each row is the export check's measure (export/verify.py: mean |int8 - fp32| over the same 1,000
inputs, and the worst digit's mean, refused above 0.02). --write-dir writes each variant's file, for
`cgan-train evaluate` (quality) and `python -m benchmarks.model_speed` (speed).

The export's choices: weights rounded by GPTQ (export/weight_rounding.py), ranges that leave out
each computed tensor's rarest values (RANGE_TAIL in export/quantize.py), and the Tanh's input
narrowed. Each of the next three rows leaves one out; "none of these three" is the export's int8
model before it made them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import onnx

from benchmarks.fp32_export import load_fp32_export, save_model
from cgan_export.onnx_export import PRECISION_KEY
from cgan_export.quantize import (
    QUANTISED_OPERATORS,
    TANH_INPUT_BOUND,
    activation_ranges,
    calibration_inputs,
    export_ranges,
    int8_version_of,
    narrowed,
    quantize_with_ranges,
    tanh_inputs,
)
from cgan_export.verify import int8_difference
from cgan_export.weight_rounding import rounded_conv_weights
from cgan_runtime.streams import print_or_exit


def variants(model: onnx.ModelProto) -> dict[str, onnx.ModelProto]:
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    batches = calibration_inputs(int(metadata["latent_dim"]), int(metadata["num_classes"]))
    cut, extremes = activation_ranges(model, batches), activation_ranges(model, batches, tail=0)
    rounded = rounded_conv_weights(model, batches)
    ranges = export_ranges(model, batches)
    quantized_nodes = [node for node in model.graph.node if node.op_type in QUANTISED_OPERATORS]
    found = {
        "as exported": quantize_with_ranges(model, ranges, rounded_weights=rounded),
        "weights to nearest level": quantize_with_ranges(model, ranges),
        "Tanh input not narrowed": quantize_with_ranges(model, cut, rounded_weights=rounded),
        "ranges to the extremes": quantize_with_ranges(
            model, narrowed(extremes, tanh_inputs(model), TANH_INPUT_BOUND), rounded_weights=rounded
        ),
        "none of these three": quantize_with_ranges(model, extremes),
        "8-bit weights": quantize_with_ranges(
            model, ranges, weight_bits=8, rounded_weights=rounded_conv_weights(model, batches, weight_bits=8)
        ),
    }
    for node in quantized_nodes:  # its weights as trained, not rounded to a grid it no longer uses
        unrounded = {name: weight for name, weight in rounded.items() if name not in node.input}
        found[f"{node.name} in fp32"] = quantize_with_ranges(
            model, ranges, fp32_nodes=(node.name,), rounded_weights=unrounded
        )
    for name, variant in found.items():  # versions that `cgan-train evaluate --baseline` takes
        version = int8_version_of(metadata["model_version"]) + _file_name(name)
        onnx.helper.set_model_props(variant, metadata | {PRECISION_KEY: "int8", "model_version": version})
    return found


def _file_name(variant: str) -> str:
    return variant.replace(" ", "_")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an fp32 export (cgan_generator.onnx)")
    parser.add_argument("--write-dir", type=Path, help="write each variant here as int8_<name>.onnx")
    args = parser.parse_args(argv)
    model, info = load_fp32_export(args.model, "int8_error")
    if args.write_dir:  # before the variants' minutes of work, not once for each
        try:
            args.write_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            sys.exit(f"int8_error: cannot make {args.write_dir}: {error.strerror or error}")
    latent_dim, num_classes = info.latent_dim, info.num_classes
    # A table no one can read stops the minutes of work before the next row (one line, exit 1).
    header = f"{'int8 variant':<28} {'mean':>7} {'worst digit':>12}"
    print_or_exit(header, "nothing measured yet", "the table")
    for name, variant in variants(model).items():
        agreement = int8_difference(model, variant, latent_dim, num_classes)
        worst = f"{agreement['worst_digit_mean']:.4f} ({agreement['worst_digit']})"
        print_or_exit(f"{name:<28} {agreement['mean']:>7.4f} {worst:>12}", f"measured {name}", "its row")
        if args.write_dir:
            save_model(variant, args.write_dir / f"int8_{_file_name(name)}.onnx", "int8_error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
