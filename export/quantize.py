"""int8: the exported model with its convolutions and matrix products in 8-bit integers.

Static quantization by onnxruntime.quantization in QDQ form: weights per output channel in 7 of
their 8 bits (reduce_range), activations uint8 with ranges measured on the generator's own inputs
(z ~ N(0, 1), every digit as often).

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
from cgan_runtime.generator import LABELS_INPUT, NOISE_INPUT

QUANTISED_OPERATORS = ("Conv", "MatMul", "Gemm")
CALIBRATION_BATCHES = 40
CALIBRATION_BATCH_SIZE = 50  # a multiple of the 10 digits: 2,000 inputs, 200 of each
CALIBRATION_SEED = 0


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 model of an exported fp32 model: same interface, metadata marked int8, and a
    model_version that adds a digest of the int8 weights to the fp32 one (other calibration,
    other numbers, other version)."""
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    ranges = activation_ranges(
        model, calibration_inputs(int(metadata["latent_dim"]), int(metadata["num_classes"]))
    )
    quantized = quantize_with_ranges(model, ranges)
    version = int8_version_of(metadata["model_version"]) + _weights_digest(quantized)
    metadata |= {"model_version": version, PRECISION_KEY: "int8"}
    onnx.helper.set_model_props(quantized, metadata)
    return quantized


def quantize_with_ranges(
    model: onnx.ModelProto, ranges: dict[str, tuple], weight_bits: int = 7, fp32_nodes: tuple[str, ...] = ()
) -> onnx.ModelProto:
    """quantize_static of the model with these activation ranges, weights per output channel in
    weight_bits (7 or 8), the nodes named in fp32_nodes left unquantized; the metadata as given."""
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
        )
        return onnx.load(output)


def activation_ranges(model: onnx.ModelProto, batches: list[dict[str, np.ndarray]]) -> dict[str, tuple]:
    """(lowest, highest) of every activation a quantized operator reads or writes, over the batches,
    computed in float64 and rounded to float32 (as onnxruntime's MinMax calibrator reports them)."""
    constants = {tensor.name for tensor in model.graph.initializer}
    names = sorted(
        {
            name
            for node in model.graph.node
            if node.op_type in QUANTISED_OPERATORS
            for name in (*node.input, *node.output)
            if name and name not in constants
        }
    )
    reference = Float64Reference(model)
    lowest = dict.fromkeys(names, np.inf)
    highest = dict.fromkeys(names, -np.inf)
    for feeds in batches:
        for name, values in reference.run(feeds, names).items():
            lowest[name] = min(lowest[name], float(values.min()))
            highest[name] = max(highest[name], float(values.max()))
    return {
        name: (np.array([lowest[name]], np.float32), np.array([highest[name]], np.float32)) for name in names
    }


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
