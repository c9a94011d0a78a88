"""ONNX emitter for the baseline U-Net ('unet'), BatchNorm folded into each 3x3 conv.

Layout mirrors :class:`seg_jax.models.unet.UNet`: per level ``ConvBlock`` (2 x Conv3x3-BN-ReLU) then 2x2
MaxPool; a bridge block; per level (deepest first) the 2x2 stride-2 up-convolution as ONNX ConvTranspose,
concat with the skip, a ``ConvBlock``; a 1x1 head and a sigmoid. The up-convolution's output pixel
(2i + a, 2j + b) is ``x[i, j] @ kernel[1 - a, 1 - b]`` (see ``UpConv2x2``), so the ConvTranspose weight is the
Flax kernel flipped in both spatial axes, laid out (C_in, C_out, 2, 2). Height and width: multiples of 16.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from seg_jax.inference.fused import fold_conv_bn
from seg_jax.models.layers import KERAS_BN_EPSILON
from seg_jax.onnx.graph import GraphBuilder


def fold_unet(variables: Mapping[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """``{"params", "batch_stats"}`` of a ``UNet`` -> ``{"<block>/conv_<i>": {"kernel", "bias"}, "upconv_<l>",
    "head"}`` with every BatchNorm folded into the conv before it (float64 maths, float32 out)."""
    params, stats = variables["params"], variables["batch_stats"]
    out: dict[str, dict[str, np.ndarray]] = {}
    for block, p in params.items():
        if block.startswith("upconv_") or block == "head":
            out[block] = {k: np.asarray(v, np.float32) for k, v in p.items()}
            continue
        for i in range(2):
            out[f"{block}/conv_{i}"] = fold_conv_bn(p[f"conv_{i}"], p[f"bn_{i}"], stats[block][f"bn_{i}"],
                                                    KERAS_BN_EPSILON)
    return out


def _block(g: GraphBuilder, f: Mapping[str, Mapping[str, np.ndarray]], x: str, block: str) -> str:
    for i in range(2):
        w = f[f"{block}/conv_{i}"]
        x = g.act(g.conv(x, w["kernel"], w["bias"], hint=f"{block}_c{i}"), "relu")
    return x


def emit(g: GraphBuilder, f: Mapping[str, Mapping[str, np.ndarray]]) -> None:
    """Input ``image`` (batch, H, W, 3) float32 RGB in [0, 1] -> output ``mask`` (batch, H, W, 1) probability."""
    levels = sum(1 for k in f if k.startswith("upconv_"))
    x = g.to_nchw(g.add_input("image", ["batch", "height", "width", 3]))
    skips = []
    for level in range(levels):
        x = _block(g, f, x, f"down_{level}")
        skips.append(x)
        x = g.op("MaxPool", [x], f"pool{level}", kernel_shape=[2, 2], strides=[2, 2])
    x = _block(g, f, x, "bridge")
    for level in reversed(range(levels)):
        up = f[f"upconv_{level}"]
        w = g.const(np.transpose(up["kernel"][::-1, ::-1], (2, 3, 0, 1)), f"up{level}_w")
        x = g.op("ConvTranspose", [x, w, g.const(up["bias"], f"up{level}_b")], f"up{level}",
                 kernel_shape=[2, 2], strides=[2, 2])
        x = g.op("Concat", [x, skips[level]], f"cat{level}", axis=1)
        x = _block(g, f, x, f"up_{level}")
    x = g.conv(x, f["head"]["kernel"], f["head"]["bias"], hint="head")
    g.add_output(g.to_nhwc(g.act(x, "sigmoid")), "mask", ["batch", "height", "width", 1])
