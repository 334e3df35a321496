"""int8: the exported model with its convolutions and matrix products in 8-bit integers.

Static quantization by onnxruntime.quantization in QDQ form: weights per output channel in 7 of
their 8 bits (reduce_range), activations uint8 with ranges measured on the generator's own inputs
(z ~ N(0, 1), every digit as often).

- Ranges without the rarest values: a tensor computed inside the graph is given the range that
  all but 1 in 10,000 of its calibration values lie in (RANGE_TAIL at each end), not its extremes.
  Its extremes lie far out (in a 180-epoch generator, 2 to 3 times the 99.99th percentile), and a
  range stretched to them leaves the uint8 steps too coarse for every other value: the longer
  the training, the longer the tails, and the export's int8 check refused such a generator
  (`python -m benchmarks.int8_error` measures each choice). The graph's inputs keep their full
  range: they are what the caller gives.
- The convolutions' weights rounded by GPTQ (export/weight_rounding.py), on the grid onnxruntime
  gives the trained weights: their errors cancel in each output instead of adding up.
- The Tanh's input narrowed to +-atanh(1 - 1/1275): beyond it the Tanh is within a tenth of a
  grey level of +-1, so the logits' long negative tail (the background) needs no steps at all.

- 7-bit weights: CPUs without VNNI (AVX2, AVX-512 before Cascade Lake) add uint8 x int8 products
  in pairs into int16, which can overflow and saturate: with 8-bit weights the same file drew
  pixels far from fp32 there that VNNI CPUs did not (`make portability` measures it). With 7-bit
  weights no pair can overflow, and every CPU computes the same integers.
- Ranges measured in float64 (export/float64_reference.py), not by onnxruntime's calibrator,
  whose float32 kernels differ from CPU to CPU: the same weights give the same int8 file on
  every machine.

It is the runtime's bundled model because it is measurably faster (`make bench`) and `make
evaluate` shows its quality within the bar of the fp32 export (docs/benchmarks.md,
models/MODEL_CARD.md).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    TensorsData,
    quantize_static,
    save_tensors_data,
)

from cgan_export.float64_reference import Float64Reference
from cgan_export.onnx_export import PRECISION_KEY
from cgan_export.weight_rounding import rounded_conv_weights
from cgan_runtime.generator import LABELS_INPUT, NOISE_INPUT

QUANTISED_OPERATORS = ("Conv", "MatMul", "Gemm")
CALIBRATION_BATCHES = 40
CALIBRATION_BATCH_SIZE = 50  # a multiple of the 10 digits: 2,000 inputs, 200 of each
CALIBRATION_SEED = 0
RANGE_TAIL = 1e-4  # the share of a computed tensor's calibration values left beyond each end of its range
TANH_INPUT_BOUND = float(np.arctanh(1 - 2 / 255 / 10))  # a tenth of a grey level of 255 in [-1, 1]
VALUE_PRESERVING = ("Transpose", "Reshape")


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 model of an exported fp32 model: same interface, metadata marked int8, and a
    model_version that adds a digest of the int8 weights to the fp32 one (other calibration,
    other numbers, other version)."""
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    batches = calibration_inputs(int(metadata["latent_dim"]), int(metadata["num_classes"]))
    quantized = quantize_with_ranges(
        model, export_ranges(model, batches), rounded_weights=rounded_conv_weights(model, batches)
    )
    version = int8_version_of(metadata["model_version"]) + _weights_digest(quantized)
    metadata |= {"model_version": version, PRECISION_KEY: "int8"}
    onnx.helper.set_model_props(quantized, metadata)
    return quantized


def quantize_with_ranges(
    model: onnx.ModelProto,
    ranges: dict[str, tuple],
    weight_bits: int = 7,
    fp32_nodes: tuple[str, ...] = (),
    rounded_weights: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    """quantize_static of the model with these activation ranges, weights per output channel in
    weight_bits (7 or 8), the nodes named in fp32_nodes left unquantized; the metadata as given.
    rounded_weights (export/weight_rounding.py): weights already on their grid, put in place of
    the model's, their scales those of the model's own weights."""
    overrides = {}
    if rounded_weights:
        model, overrides = _with_rounded_weights(model, rounded_weights)
    with tempfile.TemporaryDirectory() as folder, _quiet_root_logger():
        source, output = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        ranges_file = Path(folder) / "ranges.json"  # read as a calibration cache: no calibration runs
        onnx.save_model(model, source)  # given the ModelProto itself, quantize_static alters it
        save_tensors_data(TensorsData(CalibrationMethod.MinMax, ranges), ranges_file)
        quantize_static(
            source,
            output,
            calibration_data_reader=None,
            calibration_cache_path=ranges_file,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            reduce_range={7: True, 8: False}[weight_bits],
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=list(QUANTISED_OPERATORS),
            nodes_to_exclude=list(fp32_nodes),
            extra_options={"TensorQuantOverrides": overrides} if overrides else {},
        )
        return onnx.load(output)


def _with_rounded_weights(
    model: onnx.ModelProto, rounded: dict[str, np.ndarray]
) -> tuple[onnx.ModelProto, dict]:
    """A copy of the model with the rounded weights in place, and onnxruntime's overrides that keep
    each output channel's range that of the weight it replaces (its grid is that one's)."""
    replaced = onnx.ModelProto()
    replaced.CopyFrom(model)
    overrides = {}
    for tensor in replaced.graph.initializer:
        if tensor.name in rounded:
            original = onnx.numpy_helper.to_array(tensor)
            largest = np.abs(original.reshape(original.shape[0], -1)).max(axis=1)
            overrides[tensor.name] = [
                {"axis": 0, "rmin": -float(value), "rmax": float(value)} for value in largest
            ]
            tensor.CopyFrom(onnx.numpy_helper.from_array(rounded[tensor.name], tensor.name))
    return replaced, overrides


def activation_ranges(
    model: onnx.ModelProto, batches: list[dict[str, np.ndarray]], tail: float = RANGE_TAIL
) -> dict[str, tuple]:
    """(low, high) of every activation a quantized operator reads or writes, over the batches,
    computed in float64 and rounded to float32 (as onnxruntime's calibrators report them). A graph
    input's range is its extremes; a computed tensor's leaves at most `tail` of its values below
    low and as many above high (tail 0: its extremes)."""
    constants = {tensor.name for tensor in model.graph.initializer}
    inputs = {tensor.name for tensor in model.graph.input}
    names = sorted(
        {
            name
            for node in model.graph.node
            if node.op_type in QUANTISED_OPERATORS
            for name in (*node.input, *node.output)
            if name and name not in constants
        }
    )
    rows = sum(len(next(iter(feeds.values()))) for feeds in batches)
    reference = Float64Reference(model)
    lowest: dict[str, np.ndarray] = {}
    highest: dict[str, np.ndarray] = {}
    for feeds in batches:
        for name, values in reference.run(feeds, names).items():
            values = values.ravel()
            # the k-th extreme of all the values is among the k extremes of each batch: keep those
            share = 0.0 if name in inputs else tail
            keep = int(share * len(values) * rows / len(next(iter(feeds.values())))) + 1
            lowest[name] = _smallest(np.concatenate([lowest.get(name, []), values]), keep)
            highest[name] = -_smallest(-np.concatenate([highest.get(name, []), values]), keep)
    return {
        name: (np.array([lowest[name].max()], np.float32), np.array([highest[name].min()], np.float32))
        for name in names
    }


def export_ranges(model: onnx.ModelProto, batches: list[dict[str, np.ndarray]]) -> dict[str, tuple]:
    """The ranges the export quantizes with: the activations' without their tails, the Tanh's
    input narrowed."""
    return narrowed(activation_ranges(model, batches), tanh_inputs(model), TANH_INPUT_BOUND)


def _smallest(values: np.ndarray, count: int) -> np.ndarray:
    """The `count` smallest of values (all of them if fewer), in no order."""
    return values if len(values) <= count else np.partition(values, count - 1)[:count]


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
    """The ranges with those of `names` cut to [-bound, bound]."""
    narrow = dict(ranges)
    for name in names:
        if name in narrow:
            low, high = narrow[name]
            narrow[name] = (np.maximum(low, np.float32(-bound)), np.minimum(high, np.float32(bound)))
    return narrow


def int8_version_of(version: str) -> str:
    """The prefix every int8 model of the fp32 model `version` has in its model_version."""
    return f"{version}-int8-"


def _weights_digest(model: onnx.ModelProto) -> str:
    digest = hashlib.sha256()
    for tensor in sorted(model.graph.initializer, key=lambda tensor: tensor.name):
        digest.update(tensor.name.encode())
        digest.update(onnx.numpy_helper.to_array(tensor).tobytes())
    return digest.hexdigest()[:8]


def calibration_inputs(latent_dim: int, num_classes: int) -> list[dict[str, np.ndarray]]:
    """The generator's inputs as sampling draws them, every digit equally, from a fixed seed."""
    rng = np.random.default_rng(CALIBRATION_SEED)
    labels = np.arange(CALIBRATION_BATCH_SIZE, dtype=np.int64) % num_classes
    return [
        {
            NOISE_INPUT: rng.standard_normal((CALIBRATION_BATCH_SIZE, latent_dim), dtype=np.float32),
            LABELS_INPUT: labels,
        }
        for _ in range(CALIBRATION_BATCHES)
    ]


@contextmanager
def _quiet_root_logger():
    """onnxruntime.quantization logs advice to pre-process (for vision models) on the root logger."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
