"""The fp32 export a benchmark takes as its argument, checked: one clear line for a file that is not one."""

from __future__ import annotations

import sys
from pathlib import Path

import onnx

from cgan_export.onnx_export import PRECISION_KEY
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
