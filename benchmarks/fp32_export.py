"""The fp32 export a benchmark takes as its argument, checked, and the models it writes: one clear line
for a file that is not an export, or one that cannot be written."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from cgan_export.onnx_export import PRECISION_KEY
from cgan_runtime.files import atomic_path
from cgan_runtime.generator import DigitGenerator, ModelError, ModelInfo


def load_fp32_export(path: Path, tool: str) -> tuple[onnx.ModelProto, ModelInfo]:
    """The model at path and its interface; exits with "TOOL: why" unless it is an fp32 export."""
    try:
        info = DigitGenerator(path).info  # the runtime's checks: one clear line for a bad file
    except ModelError as error:
        sys.exit(f"{tool}: {error}")
    model = onnx.load(path)
    if {prop.key: prop.value for prop in model.metadata_props}.get(PRECISION_KEY) != "fp32":
        sys.exit(f"{tool}: {path} is not an fp32 export (give cgan_generator.onnx)")
    return model, info


def save_model(model: onnx.ModelProto, path: Path, tool: str) -> None:
    """Writes the model whole or not at all (a temporary file, then a rename); exits with "TOOL:
    cannot write PATH: why" when it cannot."""
    try:
        with atomic_path(path) as temporary:
            onnx.save_model(model, temporary)
    except OSError as error:
        sys.exit(f"{tool}: cannot write {path}: {error.strerror or error}")
