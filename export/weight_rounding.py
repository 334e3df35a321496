"""The convolutions' int8 weights rounded by GPTQ (Frantar et al., 2022, "GPTQ: Accurate
Post-Training Quantization for Generative Pre-trained Transformers"), not each to its nearest level.

Rounding each weight to its nearest level leaves every output with the sum of the rounding errors;
GPTQ rounds the weights of an output channel one input at a time and moves each one's error onto
the inputs not yet rounded, in proportion to how they vary together on the calibration inputs (the
inverse of X X^T), so that the errors cancel in the output. The scales stay the per-channel
ones onnxruntime gives the unrounded weights: only which level each weight takes changes.

Why: 7-bit weights (export/quantize.py) are the int8 model's largest error, and most of it is the
last convolution's, whose weights have long tails after long training; `python -m
benchmarks.int8_error` measures it.

Computed in float64 from the float64 reference, inputs in their fixed order, no reordering by
size: a result moves between machines only by a float64 rounding, too little to move a weight
across the middle between two levels.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from cgan_export.float64_reference import Float64Reference

WEIGHT_LEVELS = {7: 64, 8: 127}  # onnxruntime's symmetric int8 weights: [-64, 64] in reduce_range
DAMPING = 0.01  # of the mean variance, added to X X^T's diagonal: inputs never seen still invert


def rounded_conv_weights(
    model: onnx.ModelProto, batches: list[dict[str, np.ndarray]], weight_bits: int = 7
) -> dict[str, np.ndarray]:
    """Each plain Conv's weight (by name) on its per-output-channel grid of weight_bits, rounded by
    GPTQ over the conv's inputs on the batches; float32, the weight's shape. Other convolutions
    (grouped, strided, dilated, auto-padded) are left out: onnxruntime rounds theirs to nearest."""
    weights = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    pads = {}  # the plain convolutions, each with its padding
    for node in model.graph.node:
        if node.op_type == "Conv" and node.input[1] in weights and weights[node.input[1]].ndim == 4:
            attributes = {
                attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute
            }
            steps = (*attributes.get("strides", ()), *attributes.get("dilations", ()))
            if (
                attributes.get("group", 1) == 1
                and all(step == 1 for step in steps)
                and attributes.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
            ):
                pads[node.name] = (node.input[0], node.input[1], attributes.get("pads"))
    reference = Float64Reference(model)
    products: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for feeds in batches:
        outputs = reference.run(feeds, sorted({source for source, _, _ in pads.values()}))
        for source, weight, padding in pads.values():
            columns = _patches(outputs[source], weights[weight].shape[2:], padding)
            products[weight] = products.get(weight, 0) + columns @ columns.T
            counts[weight] = counts.get(weight, 0) + columns.shape[1]
    return {
        name: gptq(weights[name], products[name] / counts[name], WEIGHT_LEVELS[weight_bits])
        for name in products
    }


def gptq(weight: np.ndarray, covariance: np.ndarray, levels: int) -> np.ndarray:
    """weight [out, ...] on the grid max|w| / levels of each output channel, rounded input by input
    with each rounding error spread over the inputs after it (covariance: E[x x^T] of the inputs,
    flattened as the weight is). A weight that is 0 stays 0: the inference form's zeros are its
    structure (export/inference_form.py), so only the inputs a channel reads take its errors."""
    rows = weight.reshape(weight.shape[0], -1).astype(np.float64)
    scale = np.abs(rows).max(axis=1) / levels
    rounded = np.zeros_like(rows)
    reads = rows != 0
    for inputs in np.unique(reads, axis=0):  # the channels that read the same inputs, together
        channels = np.all(reads == inputs, axis=1)
        if inputs.any():
            block = np.ix_(channels, inputs)
            rounded[block] = _rounded(
                rows[block], covariance[np.ix_(inputs, inputs)], scale[channels], levels
            )
    return rounded.reshape(weight.shape).astype(np.float32)


def _rounded(rows: np.ndarray, covariance: np.ndarray, scale: np.ndarray, levels: int) -> np.ndarray:
    hessian = covariance.copy()
    # inputs that were always 0 have nothing to say: then each weight goes to its nearest level
    hessian[np.diag_indices_from(hessian)] += DAMPING * np.mean(np.diag(hessian)) or 1.0
    upper = np.linalg.cholesky(np.linalg.inv(hessian)).T
    remaining, rounded = rows.copy(), np.empty_like(rows)
    for column in range(rows.shape[1]):
        rounded[:, column] = np.clip(np.round(remaining[:, column] / scale), -levels, levels) * scale
        error = (remaining[:, column] - rounded[:, column]) / upper[column, column]
        remaining[:, column + 1 :] -= np.outer(error, upper[column, column + 1 :])
    return rounded


def _patches(images: np.ndarray, kernel: tuple[int, ...], pads: list[int] | None) -> np.ndarray:
    """The inputs each output of a stride-1 convolution reads: [channels x kernel, positions]."""
    top, left, bottom, right = pads or (0, 0, 0, 0)
    padded = np.pad(images, ((0, 0), (0, 0), (top, bottom), (left, right)))
    height, width = padded.shape[2] - kernel[0] + 1, padded.shape[3] - kernel[1] + 1
    windows = [
        padded[:, :, i : i + height, j : j + width] for i in range(kernel[0]) for j in range(kernel[1])
    ]
    columns = np.stack(windows, axis=2)  # [batch, channels, kernel, height, width]
    return columns.transpose(1, 2, 0, 3, 4).reshape(images.shape[1] * len(windows), -1)
