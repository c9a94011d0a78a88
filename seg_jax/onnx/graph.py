"""A small ONNX graph builder over ``onnx.helper``: named tensors in, one node per call, NCHW inside.

The emitters (:mod:`seg_jax.onnx.mobilenet`, :mod:`seg_jax.onnx.unet`) walk the BatchNorm-folded Flax weights
and call these methods; every weight becomes an initializer. Kernels arrive in Flax's HWIO layout (depthwise
kernels in Keras' (k, k, 1, C)) and are transposed here to ONNX's OIHW, so the emitters never think about it.

Padding follows TensorFlow 'SAME' for inputs whose size is even at every stride-2 layer (true for the
multiples of 32 every seg_jax model requires): stride 1 pads (k - 1) / 2 on both sides, stride 2 pads
(k - 2) // 2 before and the rest after. Fixed pads (not ``auto_pad``) keep height and width symbolic.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def same_pads(kernel: int, stride: int) -> list[int]:
    """ONNX ``pads`` (top, left, bottom, right) equal to TF 'SAME' for even input sizes."""
    total = kernel - 1 if stride == 1 else kernel - 2
    before = total // 2
    return [before, before, total - before, total - before]


class GraphBuilder:
    """Accumulates nodes and initializers; each op method returns the name of its output tensor."""

    def __init__(self, name: str):
        self.name = name
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0

    # -- plumbing ----------------------------------------------------------------------------------------
    def _fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: Sequence[str], hint: str | None = None, outputs: int = 1,
           **attrs) -> str | list[str]:
        """Append one node; returns its output name (or names when ``outputs`` > 1)."""
        names = [self._fresh(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names

    def const(self, value: np.ndarray, hint: str = "const", dtype=np.float32) -> str:
        """A weight or constant as an initializer (float32 unless ``dtype``)."""
        name = self._fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype)), name))
        return name

    def add_input(self, name: str, shape: Sequence[int | str]) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def add_output(self, tensor: str, name: str, shape: Sequence[int | str]) -> str:
        """Expose ``tensor`` as graph output ``name`` (through an Identity so the name is free to choose)."""
        self.nodes.append(helper.make_node("Identity", [tensor], [name], name=f"out_{name}"))
        self.outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
        return name

    def model(self, doc: str, metadata: dict[str, str]) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers, doc_string=doc)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="seg_jax",
                                  doc_string=doc)
        model.ir_version = 8  # the newest IR that opset 17 runtimes of 2022 on still load
        helper.set_model_props(model, {k: str(v) for k, v in metadata.items()})
        return model

    # -- layers ------------------------------------------------------------------------------------------
    def conv(self, x: str, kernel: np.ndarray, bias: np.ndarray | None, stride: int = 1, hint: str = "conv") -> str:
        """Dense conv, HWIO ``kernel`` (k, k, I, O), TF 'SAME' padding. (N, I, H, W) -> (N, O, H/s, W/s)."""
        k = kernel.shape[0]
        w = self.const(np.transpose(kernel, (3, 2, 0, 1)), f"{hint}_w")
        ins = [x, w] + ([self.const(bias, f"{hint}_b")] if bias is not None else [])
        return self.op("Conv", ins, hint, kernel_shape=[k, k], strides=[stride, stride], pads=same_pads(k, stride))

    def depthwise(self, x: str, kernel: np.ndarray, bias: np.ndarray | None, stride: int = 1,
                  hint: str = "dw") -> str:
        """Depthwise conv as a grouped Conv (group = C), Keras kernel (k, k, 1, C). (N, C, H, W) -> (N, C, H/s, W/s)."""
        k, c = kernel.shape[0], kernel.shape[-1]
        w = self.const(np.transpose(kernel, (3, 2, 0, 1)), f"{hint}_w")  # (C, 1, k, k)
        ins = [x, w] + ([self.const(bias, f"{hint}_b")] if bias is not None else [])
        return self.op("Conv", ins, hint, kernel_shape=[k, k], strides=[stride, stride], pads=same_pads(k, stride),
                       group=c)

    def act(self, x: str, kind: str) -> str:
        """'relu' | 'hard_swish' (x relu6(x + 3) / 6) | 'hard_sigmoid' (relu6(x + 3) / 6) | 'keras_hard_sigmoid'
        (clip(0.2 x + 0.5, 0, 1)) | 'sigmoid' | 'tanh' | 'none'."""
        if kind == "none":
            return x
        if kind == "relu":
            return self.op("Relu", [x])
        if kind == "hard_swish":
            return self.op("HardSwish", [x])
        if kind == "hard_sigmoid":
            return self.op("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)
        if kind == "keras_hard_sigmoid":
            return self.op("HardSigmoid", [x], alpha=0.2, beta=0.5)
        if kind == "sigmoid":
            return self.op("Sigmoid", [x])
        if kind == "tanh":
            return self.op("Tanh", [x])
        raise ValueError(f"unknown activation {kind!r}")

    def add(self, a: str, b: str) -> str:
        return self.op("Add", [a, b])

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", [a, b])

    def affine(self, x: str, scale: float, offset: float) -> str:
        """x * scale + offset with scalar constants (e.g. [0, 1] -> [-1, 1])."""
        return self.op("Add", [self.op("Mul", [x, self.const(np.float32(scale), "scale")]),
                               self.const(np.float32(offset), "offset")])

    def upsample2x(self, x: str) -> str:
        """Bilinear 2x with half-pixel centres and clamped edges, the same values as
        ``seg_jax.models.layers.upsample2x_bilinear`` (its 0.25 / 0.75 blends). (N, C, H, W) -> (N, C, 2H, 2W)."""
        scales = self.const(np.array([1, 1, 2, 2], np.float32), "up_scales")
        return self.op("Resize", [x, "", scales], "up", mode="linear", coordinate_transformation_mode="half_pixel")

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.op("Transpose", [x], perm=list(perm))

    def to_nchw(self, x: str) -> str:
        return self.transpose(x, (0, 3, 1, 2))

    def to_nhwc(self, x: str) -> str:
        return self.transpose(x, (0, 2, 3, 1))
