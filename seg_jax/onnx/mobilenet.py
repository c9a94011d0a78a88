"""ONNX emitters for the U-Net MobileNet ('mobilenet') and its ConvLSTM variant ('convlstm').

Input: the BatchNorm-folded weights of :func:`seg_jax.inference.fused.fold_batchnorm` (``{layer_path: {"kernel",
"bias"}}``), so every conv + BatchNorm pair is one ONNX Conv. The layer walk mirrors
:func:`seg_jax.inference.fused.fused_apply` (itself pinned to the Flax model by tests): stem conv + hard-swish, 13
inverted-residual blocks (1x1 expand, depthwise as grouped Conv, squeeze-excite as GlobalAveragePool ->
Conv -> ReLU -> Conv -> HardSigmoid -> Mul, 1x1 project, residual add), then four residual decoder blocks,
each followed by a half-pixel bilinear 2x Resize and the skip add (and, for 'convlstm', a ConvLSTM cell).
Tensors are NCHW inside; the graph's inputs and outputs are NHWC like the JAX model's.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from seg_jax.models.mobilenet_v3 import LARGE_BLOCKS
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS, STATE_SCALES
from seg_jax.onnx.graph import GraphBuilder

Weights = Mapping[str, Mapping[str, np.ndarray]]


def _pw(g: GraphBuilder, x: str, w: Mapping[str, np.ndarray], act: str, hint: str) -> str:
    return g.act(g.conv(x, w["kernel"], w["bias"], hint=hint), act)


def _dw(g: GraphBuilder, x: str, w: Mapping[str, np.ndarray], stride: int, act: str, hint: str) -> str:
    return g.act(g.depthwise(x, w["kernel"], w["bias"], stride, hint=hint), act)


def encoder(g: GraphBuilder, f: Weights, x: str) -> dict[str, str]:
    """(N, 3, H, W) in [0, 1] -> the decoder's taps {expand_1, expand_3, depthwise_3, expand_12} (NCHW)."""
    x = g.affine(x, 2.0, -1.0)  # MobileNetV3 sees [-1, 1]
    x = g.act(g.conv(x, f["encoder/conv"]["kernel"], f["encoder/conv"]["bias"], stride=2, hint="stem"), "hard_swish")
    taps: dict[str, str] = {}
    for block_id, spec in enumerate(LARGE_BLOCKS[:13]):
        name = "encoder/expanded_conv" if block_id == 0 else f"encoder/expanded_conv_{block_id}"
        hint = f"b{block_id}"
        in_filters = f[f"{name}/depthwise"]["kernel"].shape[-1] if block_id == 0 else \
            f[f"{name}/expand"]["kernel"].shape[-2]
        shortcut = x
        if block_id > 0:
            x = _pw(g, x, f[f"{name}/expand"], spec.activation, f"{hint}_expand")
            taps[f"expand_{block_id}"] = x
            if block_id == 12:
                break
        x = _dw(g, x, f[f"{name}/depthwise"], spec.stride, spec.activation, f"{hint}_dw")
        taps[f"depthwise_{block_id}"] = x
        if spec.squeeze_excite:
            s = g.op("GlobalAveragePool", [x], f"{hint}_se_pool")
            s = _pw(g, s, f[f"{name}/squeeze_excite_Conv"], "relu", f"{hint}_se_reduce")
            s = _pw(g, s, f[f"{name}/squeeze_excite_Conv_1"], "hard_sigmoid", f"{hint}_se_expand")
            x = g.mul(x, s)
        x = _pw(g, x, f[f"{name}/project"], "none", f"{hint}_project")
        if spec.stride == 1 and in_filters == spec.filters:
            x = g.add(x, shortcut)
    return taps


def bottleneck(g: GraphBuilder, f: Weights, x: str, level: int) -> str:
    """The decoder's residual block: ReLU(DW-ReLU-PW-ReLU-DW-ReLU-PW + PW shortcut), BatchNorms folded."""
    p = f"decoder/bottleneck_{level}"
    y = _dw(g, x, f[f"{p}/depthwise_0"], 1, "relu", f"d{level}_dw0")
    y = _pw(g, y, f[f"{p}/pointwise_0"], "relu", f"d{level}_pw0")
    y = _dw(g, y, f[f"{p}/depthwise_1"], 1, "relu", f"d{level}_dw1")
    y = _pw(g, y, f[f"{p}/pointwise_1"], "none", f"d{level}_pw1")
    return g.act(g.add(y, _pw(g, x, f[f"{p}/shortcut"], "none", f"d{level}_shortcut")), "relu")


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


def emit(g: GraphBuilder, f: Weights, recurrent: bool, gate: str = "hard_sigmoid",
         residual_cells: bool = False) -> None:
    """Build the whole graph into ``g``: input ``image`` (batch, H, W, 3) float32 RGB in [0, 1] -> output
    ``mask`` (batch, H, W, 1) person probability; with ``recurrent`` also the state inputs/outputs of
    :func:`state_names` (NHWC, zeros for the first frame); ``residual_cells`` adds each cell's output to its
    input, as the model option of that name does."""
    gate_kind = {"hard_sigmoid": "keras_hard_sigmoid", "sigmoid": "sigmoid"}[gate]
    image = g.add_input("image", ["batch", "height", "width", 3])
    taps = encoder(g, f, g.to_nchw(image))
    skips = (taps["depthwise_3"], taps["expand_3"], taps["expand_1"], None)
    x = taps["expand_12"]
    names = state_names()
    for level, skip in enumerate(skips):
        x = bottleneck(g, f, x, level)
        if skip is None and not recurrent:
            # head(upsample(x)) == upsample(head(x)) (per-pixel affine head, bilinear weights sum to 1):
            # upsample one channel instead of 16, as seg_jax.inference.fused does.
            x = g.upsample2x(g.conv(x, f["decoder/head"]["kernel"], f["decoder/head"]["bias"], hint="head"))
            break
        x = g.upsample2x(x)
        if skip is not None:
            x = g.add(x, skip)
        if recurrent:
            (h_in, h_out), (c_in, c_out) = names[2 * level], names[2 * level + 1]
            h = g.to_nchw(g.add_input(h_in, state_shape(level)))
            c = g.to_nchw(g.add_input(c_in, state_shape(level)))
            h_new, c_new = convlstm_cell(g, f[f"decoder/convlstm_{level}"], x, h, c, gate_kind, level)
            g.add_output(g.to_nhwc(h_new), h_out, state_shape(level))
            x = g.add(x, h_new) if residual_cells else h_new
            g.add_output(g.to_nhwc(c_new), c_out, state_shape(level))
    if recurrent:
        x = g.conv(x, f["decoder/head"]["kernel"], f["decoder/head"]["bias"], hint="head")
    mask = g.to_nhwc(g.act(x, "sigmoid"))
    g.add_output(mask, "mask", ["batch", "height", "width", 1])
    # the mask first among the outputs, like the image among the inputs
    g.outputs.insert(0, g.outputs.pop())
