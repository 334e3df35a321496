"""int8: the exported model with its convolutions and matrix products in 8-bit integers.

Static quantisation by onnxruntime.quantization in QDQ form: weights int8 per output channel,
activations uint8 with ranges measured on the generator's own inputs (z ~ N(0, 1), every digit
as often). It is the runtime's bundled model because it is measurably faster (`make bench`) and
`make evaluate` shows its quality within the bar of the fp32 file (README: "Speed and size",
"The shipped model").
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from cgan_runtime.generator import LABELS_INPUT, NOISE_INPUT

QUANTISED_OPERATORS = ("Conv", "MatMul", "Gemm")
CALIBRATION_BATCHES = 40
CALIBRATION_BATCH_SIZE = 50  # a multiple of the 10 digits: 2,000 inputs, 200 of each
CALIBRATION_SEED = 0
PRECISION_KEY = "precision"


def quantize_int8(model: onnx.ModelProto) -> onnx.ModelProto:
    """The int8 form of an exported fp32 model: same interface, metadata marked int8, and a
    model_version that adds a digest of the int8 weights to the fp32 one (other calibration,
    other numbers, other version)."""
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    with tempfile.TemporaryDirectory() as folder, _quiet_root_logger():
        source, output = Path(folder) / "fp32.onnx", Path(folder) / "int8.onnx"
        onnx.save_model(model, source)  # given the ModelProto itself, quantize_static alters it
        quantize_static(source, output, _CalibrationInputs(int(metadata["latent_dim"]),
                                                          int(metadata["num_classes"])),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=list(QUANTISED_OPERATORS))
        quantized = onnx.load(output)
    version = int8_version_of(metadata["model_version"]) + _weights_digest(quantized)
    metadata |= {"model_version": version, PRECISION_KEY: "int8"}
    onnx.helper.set_model_props(quantized, metadata)
    return quantized


def int8_version_of(version: str) -> str:
    """The prefix every int8 form of the fp32 model `version` has in its model_version."""
    return f"{version}-int8-"


def _weights_digest(model: onnx.ModelProto) -> str:
    digest = hashlib.sha256()
    for tensor in sorted(model.graph.initializer, key=lambda tensor: tensor.name):
        digest.update(tensor.name.encode())
        digest.update(onnx.numpy_helper.to_array(tensor).tobytes())
    return digest.hexdigest()[:8]


class _CalibrationInputs(CalibrationDataReader):
    """The generator's inputs as sampling draws them, every digit equally, from a fixed seed."""

    def __init__(self, latent_dim: int, num_classes: int):
        rng = np.random.default_rng(CALIBRATION_SEED)
        labels = np.arange(CALIBRATION_BATCH_SIZE, dtype=np.int64) % num_classes
        self._batches = iter([
            {NOISE_INPUT: rng.standard_normal((CALIBRATION_BATCH_SIZE, latent_dim), dtype=np.float32),
             LABELS_INPUT: labels}
            for _ in range(CALIBRATION_BATCHES)])

    def get_next(self) -> dict | None:
        return next(self._batches, None)


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
