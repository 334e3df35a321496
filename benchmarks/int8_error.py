"""How far an fp32 export's int8 model draws from it, as exported and with one quantization choice
changed at a time: which choice the error comes from.

    python -m benchmarks.int8_error MODEL.onnx [--write-dir DIR]

Each row is the export check's measure (export/verify.py: mean |int8 - fp32| over the same 1,000
inputs, and the worst digit's mean, refused above 0.02). --write-dir writes each variant's file, for
`cgan-train evaluate` (quality) and `python -m benchmarks.model_speed` (speed).

The narrowed Tanh input: a logit beyond +-atanh(1 - 1/1275) leaves the Tanh within a tenth of a
grey level of +-1, so the quantization range of the tensor the Tanh reads needs nothing beyond it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx

from cgan_export.onnx_export import PRECISION_KEY
from cgan_export.quantize import (
    QUANTISED_OPERATORS,
    activation_ranges,
    calibration_inputs,
    int8_version_of,
    quantize_with_ranges,
)
from cgan_export.verify import int8_difference
from cgan_runtime.files import atomic_path
from cgan_runtime.generator import DigitGenerator, ModelError

TANH_INPUT_BOUND = float(np.arctanh(1 - 2 / 255 / 10))  # a tenth of a grey level of 255 in [-1, 1]
VALUE_PRESERVING = ("Transpose", "Reshape")


def tanh_inputs(model: onnx.ModelProto) -> list[str]:
    """The tensors that reach a Tanh through value-preserving operators only."""
    producer = {output: node for node in model.graph.node for output in node.output}
    found = []
    for node in model.graph.node:
        if node.op_type == "Tanh":
            name = node.input[0]
            while name in producer and producer[name].op_type in VALUE_PRESERVING:
                name = producer[name].input[0]
            found.append(name)
    return found


def narrowed(ranges: dict[str, tuple], names: list[str], bound: float) -> dict[str, tuple]:
    narrow = dict(ranges)
    for name in names:
        if name in narrow:
            low, high = narrow[name]
            narrow[name] = (np.maximum(low, np.float32(-bound)), np.minimum(high, np.float32(bound)))
    return narrow


def variants(model: onnx.ModelProto) -> dict[str, onnx.ModelProto]:
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    ranges = activation_ranges(
        model, calibration_inputs(int(metadata["latent_dim"]), int(metadata["num_classes"]))
    )
    quantized_nodes = [node.name for node in model.graph.node if node.op_type in QUANTISED_OPERATORS]
    found = {
        "as exported": quantize_with_ranges(model, ranges),
        "8-bit weights": quantize_with_ranges(model, ranges, weight_bits=8),
        "Tanh input narrowed": quantize_with_ranges(
            model, narrowed(ranges, tanh_inputs(model), TANH_INPUT_BOUND)
        ),
    }
    for name in quantized_nodes:
        found[f"{name} in fp32"] = quantize_with_ranges(model, ranges, fp32_nodes=(name,))
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
    try:
        info = DigitGenerator(args.model).info  # the runtime's checks: one clear line for a bad file
    except ModelError as error:
        sys.exit(f"int8_error: {error}")
    model = onnx.load(args.model)
    if {prop.key: prop.value for prop in model.metadata_props}.get(PRECISION_KEY) != "fp32":
        sys.exit(f"int8_error: {args.model} is not an fp32 export (give cgan_generator.onnx)")
    latent_dim, num_classes = info.latent_dim, info.num_classes
    print(f"{'int8 variant':<28} {'mean':>7} {'worst digit':>12}")
    for name, variant in variants(model).items():
        agreement = int8_difference(model, variant, latent_dim, num_classes)
        worst = f"{agreement['worst_digit_mean']:.4f} ({agreement['worst_digit']})"
        print(f"{name:<28} {agreement['mean']:>7.4f} {worst:>12}")
        if args.write_dir:
            try:
                args.write_dir.mkdir(parents=True, exist_ok=True)
                with atomic_path(args.write_dir / f"int8_{_file_name(name)}.onnx") as temporary:
                    onnx.save_model(variant, temporary)
            except OSError as error:
                sys.exit(f"int8_error: cannot write in {args.write_dir}: {error.strerror or error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
