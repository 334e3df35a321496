"""Proof of an export: the ONNX checker passes and onnxruntime matches torch at several batch sizes."""

from __future__ import annotations

import numpy as np
import onnx
import torch
from torch import nn

from cgan_runtime.generator import IMAGES_OUTPUT, LABELS_INPUT, NOISE_INPUT

PARITY_BATCH_SIZES = (1, 2, 7, 64, 1000)
PARITY_TOLERANCE = 1e-5
PARITY_SEED = 0
# int8 cannot match fp32 to 1e-5; this bound on the mean |int8 - fp32| over 1,000 images, for
# every digit (output range [-1, 1], so 0.02 is 2.6 grey levels of 255), only catches a broken
# quantization. The quality of the int8 model is judged by `make evaluate`, like any model's.
INT8_AGREEMENT_BATCH = 1000
INT8_MEAN_TOLERANCE = 0.02


class ExportVerificationError(Exception):
    """The exported file is invalid or does not reproduce the torch model."""


def check_model(model: onnx.ModelProto) -> None:
    """onnx.checker with full shape inference, and no weights kept outside the file."""
    try:
        onnx.checker.check_model(model, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise ExportVerificationError(f"onnx.checker rejects the export: {error}") from error
    external = [
        tensor.name for tensor in model.graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL
    ]
    if external:
        raise ExportVerificationError(f"weights stored outside the file: {', '.join(external)}")


def check_int8_agreement(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, latent_dim: int, num_classes: int
) -> dict[str, float]:
    """Max and mean |int8 - fp32| on the same inputs, and the worst digit's mean; raise when a
    digit's mean is above tolerance."""
    agreement = int8_difference(fp32, int8, latent_dim, num_classes)
    if not agreement["worst_digit_mean"] <= INT8_MEAN_TOLERANCE:
        raise ExportVerificationError(
            f"the int8 model differs from fp32 by {agreement['worst_digit_mean']:.3g} on average for digit "
            f"{agreement['worst_digit']} (> {INT8_MEAN_TOLERANCE:g}): its quantization is broken"
        )
    return {key: agreement[key] for key in ("max", "mean", "worst_digit_mean")}


def int8_difference(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, latent_dim: int, num_classes: int
) -> dict[str, float]:
    """Max and mean |int8 - fp32| over INT8_AGREEMENT_BATCH inputs, the worst digit and its mean."""
    rng = np.random.default_rng(PARITY_SEED)
    feeds = {
        NOISE_INPUT: rng.standard_normal((INT8_AGREEMENT_BATCH, latent_dim), dtype=np.float32),
        LABELS_INPUT: rng.integers(0, num_classes, INT8_AGREEMENT_BATCH, dtype=np.int64),
    }
    exact, quantized = (_session(model).run([IMAGES_OUTPUT], feeds)[0] for model in (fp32, int8))
    difference = np.abs(quantized - exact)
    by_digit = {digit: float(difference[feeds[LABELS_INPUT] == digit].mean()) for digit in range(num_classes)}
    worst = max(by_digit, key=lambda digit: (np.isnan(by_digit[digit]), by_digit[digit]))  # NaN is worst
    return {
        "max": float(difference.max()),
        "mean": float(difference.mean()),
        "worst_digit": worst,
        "worst_digit_mean": by_digit[worst],
    }


def check_parity(
    generator: nn.Module,
    model: onnx.ModelProto,
    latent_dim: int,
    num_classes: int,
    batch_sizes: tuple[int, ...] = PARITY_BATCH_SIZES,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[int, float]:
    """Max |torch - onnxruntime| for the same inputs at each batch size; raise above tolerance."""
    session = _session(model)
    generator.eval()
    rng = np.random.default_rng(PARITY_SEED)
    differences = {}
    for batch_size in batch_sizes:
        noise = rng.standard_normal((batch_size, latent_dim), dtype=np.float32)
        labels = rng.integers(0, num_classes, batch_size, dtype=np.int64)
        with torch.no_grad():
            expected = generator(torch.from_numpy(noise), torch.from_numpy(labels)).numpy()
        (actual,) = session.run([IMAGES_OUTPUT], {NOISE_INPUT: noise, LABELS_INPUT: labels})
        if actual.shape != expected.shape:
            raise ExportVerificationError(
                f"N={batch_size}: onnxruntime gives shape {actual.shape}, torch {expected.shape}"
            )
        differences[batch_size] = float(np.max(np.abs(actual - expected)))
    failures = {n: d for n, d in differences.items() if not d <= tolerance}
    if failures:
        listing = ", ".join(f"N={n}: {d:.3g}" for n, d in failures.items())
        raise ExportVerificationError(
            f"output {IMAGES_OUTPUT!r} differs from torch by more than {tolerance:g} ({listing})"
        )
    return differences


def _session(model: onnx.ModelProto):
    import onnxruntime

    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
