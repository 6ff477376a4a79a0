"""Reading a network's parameters out of its ONNX graph: the one walker the explainer's views
use (the first conv's filters, a head's 1x1 conv as a weighted sum).

Int8 models store a conv's weights as int8 initializers behind DequantizeLinear, and put
Quantize/DequantizeLinear pairs around activations; `constant` dequantises the first and
`walk_back` steps over the second, so float and int8 models read alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from pose_app.errors import PoseAppError
from pose_app.inference.engine import PoseEngine


@dataclass(frozen=True)
class ConvParameters:
    """A Conv node's weights float32 (C_out, C_in, kh, kw) and bias (C_out,), and what it reads."""

    node: onnx.NodeProto
    weights: np.ndarray
    bias: np.ndarray

    @property
    def input(self) -> str:
        return self.node.input[0]


class OnnxGraph:
    """A model's graph indexed once: each tensor's producing node and each initializer."""

    def __init__(self, model: PoseEngine | onnx.ModelProto):
        self.graph = (model if isinstance(model, onnx.ModelProto) else model.onnx_model).graph
        self.initializers = {tensor.name: tensor for tensor in self.graph.initializer}
        self.producers = {output: node for node in self.graph.node for output in node.output}

    @property
    def output_names(self) -> list[str]:
        return [value.name for value in self.graph.output]

    def first(self, op_type: str) -> onnx.NodeProto | None:
        """The first node of `op_type` in the graph's (topological) order."""
        return next((node for node in self.graph.node if node.op_type == op_type), None)

    def walk_back(self, name: str, through: set[str]) -> tuple[onnx.NodeProto | None, str, list[str]]:
        """Step back from tensor `name` over the ops in `through` (following each one's first
        input): the node producing the tensor reached (None for a graph input or initializer),
        that tensor's name, and the op types stepped over."""
        passed = []
        node = self.producers.get(name)
        while node is not None and node.op_type in through:
            passed.append(node.op_type)
            name = node.input[0]
            node = self.producers.get(name)
        return node, name, passed

    def constant(self, name: str) -> np.ndarray:
        """An initializer, or a DequantizeLinear of initializers (int8 models), as float32."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name]).astype(np.float32)
        node = self.producers.get(name)
        if node is not None and node.op_type == "DequantizeLinear":
            values = self.constant(node.input[0])
            scale = self.constant(node.input[1])
            has_zero = len(node.input) > 2 and node.input[2]
            zero = self.constant(node.input[2]) if has_zero else 0.0
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            shape = [1] * values.ndim
            if np.ndim(scale) == 1:
                shape[axis] = -1
            return (values - np.reshape(zero, shape if np.ndim(zero) == 1 else ())) * np.reshape(scale, shape)
        raise PoseAppError(f"cannot read the model's parameter {name!r}: not a constant")

    def conv(self, node: onnx.NodeProto) -> ConvParameters:
        """A Conv node's parameters (a missing bias is zeros)."""
        weights = self.constant(node.input[1])
        has_bias = len(node.input) > 2 and node.input[2]
        bias = self.constant(node.input[2]) if has_bias else np.zeros(len(weights), np.float32)
        return ConvParameters(node, weights.astype(np.float32), bias.astype(np.float32))
