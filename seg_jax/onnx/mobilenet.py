"""ONNX emitter for the U-Net MobileNet ('mobilenet') and its ConvLSTM variant ('convlstm').

The graph is the walk of :mod:`seg_jax.inference.plan` (the plan the fast JAX path runs too) on
:class:`OnnxOps`, over the BatchNorm-folded weights of :func:`seg_jax.inference.fused.fold_batchnorm`, so every
conv + BatchNorm pair is one ONNX Conv: depthwise convolutions are grouped Convs, the squeeze-excite mean a
GlobalAveragePool, the 2x upsample a half-pixel bilinear Resize, a ConvLSTM cell a Conv over [x, h] and its gates.
Tensors are NCHW inside; the graph's inputs and outputs are NHWC like the JAX model's.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from seg_jax.inference.plan import Plan, Step, walk
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS, STATE_SCALES
from seg_jax.onnx.graph import GraphBuilder

Weights = Mapping[str, Mapping[str, np.ndarray]]

# ConvLSTM gate activations (the model's option) as GraphBuilder.act kinds
_GATES = {"hard_sigmoid": "keras_hard_sigmoid", "sigmoid": "sigmoid"}


def convlstm_cell(g: GraphBuilder, cell: Mapping[str, np.ndarray], x: str, h: str, c: str, gate: str,
                  level: int) -> tuple[str, str]:
    """One ``ConvLSTMCell`` step: conv over concat(x, h) with the stacked kernels, gates (i, f, g, o) in Keras
    order. x (N, C_in, H, W), h and c (N, F, H, W) -> (h_new, c_new)."""
    kernel = np.concatenate([cell["kernel"], cell["recurrent_kernel"]], axis=2)
    features = kernel.shape[-1] // 4
    z = g.conv(g.op("Concat", [x, h], f"l{level}_xh", axis=1), kernel, cell["bias"], hint=f"l{level}_gates")
    split = g.const(np.array([features] * 4, np.int64), "split", dtype=np.int64)
    i, fg, gg, o = g.op("Split", [z, split], f"l{level}_split", outputs=4, axis=1)
    c_new = g.add(g.mul(g.act(fg, gate), c), g.mul(g.act(i, gate), g.act(gg, "tanh")))
    h_new = g.mul(g.act(o, gate), g.act(c_new, "tanh"))
    return h_new, c_new


def state_names() -> list[tuple[str, str]]:
    """(input, output) names of the 8 state tensors, level by level: h0i/h0o, c0i/c0o, ..., c3i/c3o."""
    return [(f"{hc}{level}i", f"{hc}{level}o") for level in range(len(DECODER_WIDTHS)) for hc in "hc"]


def state_shape(level: int, batch: str = "batch", height: str = "height", width: str = "width") -> list:
    """Symbolic NHWC shape of level ``level``'s h or c: (batch, H / s, W / s, F)."""
    scale = STATE_SCALES[level]
    if scale == 1:
        return [batch, height, width, DECODER_WIDTHS[level]]
    return [batch, f"{height}/{scale}", f"{width}/{scale}", DECODER_WIDTHS[level]]


def _hint(step: Step) -> str:
    return step.out.split("/", 1)[-1].replace("/", "_").replace("expanded_conv", "b")


class OnnxOps:
    """The ONNX backend of :func:`seg_jax.inference.plan.walk`: each plan op appends its nodes to ``g`` and
    returns the name of its output tensor (NCHW); a 'convlstm' step also adds its level's state inputs and
    outputs (:func:`state_names`)."""

    def __init__(self, g: GraphBuilder, folded: Weights):
        self.g, self.w = g, folded

    def rescale(self, step: Step, x: str) -> str:
        return self.g.affine(x, 2.0, -1.0)

    def conv(self, step: Step, x: str) -> str:
        w = self.w[step.param]
        return self.g.act(self.g.conv(x, w["kernel"], w["bias"], stride=step.stride, hint=_hint(step)), step.act)

    def pointwise(self, step: Step, x: str) -> str:
        w = self.w[step.param]
        return self.g.act(self.g.conv(x, w["kernel"], w["bias"], hint=_hint(step)), step.act)

    def depthwise(self, step: Step, x: str) -> str:
        w = self.w[step.param]
        return self.g.act(self.g.depthwise(x, w["kernel"], w["bias"], step.stride, hint=_hint(step)), step.act)

    def mean(self, step: Step, x: str) -> str:
        return self.g.op("GlobalAveragePool", [x], _hint(step))

    def mul(self, step: Step, a: str, b: str) -> str:
        return self.g.mul(a, b)

    def add(self, step: Step, a: str, b: str) -> str:
        return self.g.act(self.g.add(a, b), step.act)

    def upsample(self, step: Step, x: str) -> str:
        return self.g.upsample2x(x)

    def convlstm(self, step: Step, x: str) -> str:
        g, level = self.g, step.level
        (h_in, h_out), (c_in, c_out) = state_names()[2 * level:2 * level + 2]
        h = g.to_nchw(g.add_input(h_in, state_shape(level)))
        c = g.to_nchw(g.add_input(c_in, state_shape(level)))
        h_new, c_new = convlstm_cell(g, self.w[step.param], x, h, c, _GATES[step.act], level)
        g.add_output(g.to_nhwc(h_new), h_out, state_shape(level))
        g.add_output(g.to_nhwc(c_new), c_out, state_shape(level))
        return h_new


def emit(g: GraphBuilder, f: Weights, plan: Plan) -> None:
    """Build the whole graph into ``g``: input ``image`` (batch, H, W, 3) float32 RGB in [0, 1] -> output
    ``mask`` (batch, H, W, 1) person probability; with a recurrent ``plan`` also the state inputs/outputs of
    :func:`state_names` (NHWC, zeros for the first frame)."""
    image = g.add_input("image", ["batch", "height", "width", 3])
    logits = walk(plan, OnnxOps(g, f), g.to_nchw(image))
    g.add_output(g.to_nhwc(g.act(logits, "sigmoid")), "mask", ["batch", "height", "width", 1])
    # the mask first among the outputs, like the image among the inputs
    g.outputs.insert(0, g.outputs.pop())
