"""An fp32 export that multiplies its noise by SCALE before anything else: the sampling temperature
of the truncation trick (BigGAN's, and StyleGAN's psi), above 1 for more variety, below 1 for less.
The scale is folded into the weight of the matrix product the noise enters, so the graph is
unchanged and `cgan-train evaluate` scores the model at that temperature (docs/experiments.md).

    python -m benchmarks.noise_scale MODEL.onnx SCALE OUT.onnx
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from benchmarks.fp32_export import load_fp32_export, save_model
from cgan_runtime.generator import NOISE_INPUT


def with_noise_scale(model: onnx.ModelProto, scale: float) -> onnx.ModelProto:
    """A copy of model whose noise is multiplied by scale; its model_version says so. ValueError
    when the noise does not enter a matrix product with a stored weight first."""
    scaled = onnx.ModelProto()
    scaled.CopyFrom(model)
    weights = {tensor.name: tensor for tensor in scaled.graph.initializer}
    users = [node for node in scaled.graph.node if NOISE_INPUT in node.input]
    if len(users) != 1 or users[0].op_type != "MatMul" or users[0].input[1] not in weights:
        raise ValueError(f"its noise {NOISE_INPUT!r} does not enter one MatMul by a stored weight")
    weight = weights[users[0].input[1]]
    values = numpy_helper.to_array(weight)
    with np.errstate(over="ignore", under="ignore"):
        multiplied = (values * scale).astype(values.dtype)
    if not np.isfinite(multiplied).all() or (multiplied[values != 0] == 0).any():
        raise ValueError(f"a scale of {scale:g} takes its weights out of {values.dtype}'s range")
    weight.CopyFrom(numpy_helper.from_array(multiplied, weight.name))
    for prop in scaled.metadata_props:
        if prop.key == "model_version":
            prop.value += f"-noise{scale:g}"
    return scaled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path, help="an fp32 export (cgan_generator.onnx)")
    parser.add_argument("scale", type=float, help="what the noise is multiplied by (> 0)")
    parser.add_argument("out", type=Path, help="where to write the scaled model")
    args = parser.parse_args(argv)
    if not args.scale > 0 or args.scale == float("inf"):
        sys.exit(f"noise_scale: the scale must be a positive number, not {args.scale:g}")
    model, _ = load_fp32_export(args.model, "noise_scale")
    try:
        scaled = with_noise_scale(model, args.scale)
    except ValueError as error:
        sys.exit(f"noise_scale: {args.model}: {error}")
    save_model(scaled, args.out, "noise_scale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
