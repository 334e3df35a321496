"""An exported graph evaluated in float64 by onnx's reference evaluator (numpy, no CPU-specific
kernels): what the export takes from running its own model (the calibration ranges of the int8
form, the sample grid) comes out the same on every machine once rounded back to float32.

A float64 result differs between machines by a few units in its 16th digit at most (a BLAS
library's summation order), so rounding it to float32 or to a grey level changes nothing unless it
lies that close to a rounding boundary.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator


class Float64Reference:
    """model (float32) with every float tensor in float64: run(feeds) gives any tensors of the graph."""

    def __init__(self, model: onnx.ModelProto):
        self._evaluator = ReferenceEvaluator(_in_float64(model))

    def run(self, feeds: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
        """The named tensors (inputs, intermediate or outputs) for these inputs, in float64."""
        feeds = {
            name: value.astype(np.float64) if value.dtype == np.float32 else value
            for name, value in feeds.items()
        }
        results = self._evaluator.run(None, feeds, intermediate=True)
        return {name: results[name] for name in names}


def _in_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    float64 = onnx.ModelProto()
    float64.CopyFrom(model)
    graph = float64.graph
    for node in graph.node:  # float constants inside nodes would stay float32: none in our exports
        if node.op_type in ("Cast", "Constant", "ConstantOfShape") or any(
            attribute.type == onnx.AttributeProto.TENSOR for attribute in node.attribute
        ):
            raise ValueError(f"cannot evaluate {node.op_type} node {node.name!r} in float64")
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT:
            array = numpy_helper.to_array(tensor).astype(np.float64)  # exact
            graph.initializer[index].CopyFrom(numpy_helper.from_array(array, tensor.name))
    for value in (*graph.input, *graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    del graph.value_info[:]
    return float64
