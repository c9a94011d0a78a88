"""Small building blocks shared by the seg_jax models.

All tensors are NHWC. The depthwise convolution keeps Keras' ``(k, k, 1, C)``
kernel layout, so parameter counts and imported weights do not depend on which
implementation runs.
"""
from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

DepthwiseImpl = Literal["auto", "shift_add", "grouped"]

# Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3); MobileNetV3 uses 0.999.
KERAS_BN_MOMENTUM = 0.99
KERAS_BN_EPSILON = 1e-3


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """MobileNetV3's hard sigmoid: relu6(x + 3) / 6."""
    return jnp.clip(x + 3.0, 0.0, 6.0) / 6.0


def hard_swish(x: jax.Array) -> jax.Array:
    """MobileNetV3's hard swish: x * relu6(x + 3) / 6."""
    return x * hard_sigmoid(x)


def keras_hard_sigmoid(x: jax.Array) -> jax.Array:
    """tf.keras 2.x ``hard_sigmoid`` (the ConvLSTM2D gate default): clip(0.2 x + 0.5, 0, 1)."""
    return jnp.clip(0.2 * x + 0.5, 0.0, 1.0)


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def resolve_depthwise_impl(impl: DepthwiseImpl) -> str:
    """'auto' picks shift-and-add on CPU (XLA's grouped conv is much slower there; measured:
    results/MEASUREMENTS.md, 'layers: depthwise conv on CPU')."""
    if impl == "auto":
        return "shift_add" if jax.default_backend() == "cpu" else "grouped"
    if impl not in ("shift_add", "grouped"):
        raise ValueError(f"depthwise impl must be 'auto', 'shift_add' or 'grouped', got {impl!r}")
    return impl


def depthwise_conv(x: jax.Array, kernel: jax.Array, stride: int, impl: str) -> jax.Array:
    """Depthwise conv with TF 'SAME' padding.

    Args:
      x: (N, H, W, C) input.
      kernel: (k, k, 1, C) weights (Keras layout).
      stride: 1 or 2.
      impl: 'shift_add' or 'grouped'.
    Returns:
      (N, ceil(H/stride), ceil(W/stride), C).
    """
    k = kernel.shape[0]
    _, h, w, c = x.shape
    pad_h, pad_w = same_padding(h, k, stride), same_padding(w, k, stride)
    if impl == "grouped":
        return jax.lax.conv_general_dilated(
            x, kernel.astype(x.dtype), window_strides=(stride, stride), padding=(pad_h, pad_w),
            dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c)
    out_h, out_w = -(-h // stride), -(-w // stride)
    xp = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    weights = kernel[:, :, 0, :].astype(x.dtype)
    out = None
    for i in range(k):
        for j in range(k):
            window = jax.lax.slice(
                xp, (0, i, j, 0), (xp.shape[0], i + (out_h - 1) * stride + 1, j + (out_w - 1) * stride + 1, c),
                (1, stride, stride, 1))
            term = window * weights[i, j]
            out = term if out is None else out + term
    return out


class DepthwiseConv2D(nn.Module):
    """Depthwise 3x3/5x5 convolution, TF 'SAME' padding, kernel (k, k, 1, C).

    Attributes:
      kernel_size: square kernel size.
      strides: 1 or 2.
      use_bias: add a per-channel bias.
      impl: 'auto' | 'shift_add' | 'grouped' (numerically equivalent).
    """
    kernel_size: int = 3
    strides: int = 1
    use_bias: bool = True
    impl: DepthwiseImpl = "auto"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.glorot_uniform(in_axis=(0, 1), out_axis=(2, 3)),
                            (self.kernel_size, self.kernel_size, 1, c))
        if self.dtype is not None:
            x = x.astype(self.dtype)
        y = depthwise_conv(x, kernel, self.strides, resolve_depthwise_impl(self.impl))
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (c,))
            y = y + bias.astype(y.dtype)
        return y


def upsample2x_bilinear(x: jax.Array) -> jax.Array:
    """Bilinear 2x upsampling with half-pixel centres (Keras ``UpSampling2D(interpolation='bilinear')``).

    Written as fixed 0.25/0.75 blends of edge-clamped neighbours, which is exactly what half-pixel
    bilinear resizing by 2 computes and is much cheaper than a general resize. (N, H, W, C) -> (N, 2H, 2W, C).
    """
    def up_axis(v: jax.Array, axis: int) -> jax.Array:
        n = v.shape[axis]
        prev = jnp.concatenate([jax.lax.slice_in_dim(v, 0, 1, axis=axis),
                                jax.lax.slice_in_dim(v, 0, n - 1, axis=axis)], axis=axis)
        nxt = jnp.concatenate([jax.lax.slice_in_dim(v, 1, n, axis=axis),
                               jax.lax.slice_in_dim(v, n - 1, n, axis=axis)], axis=axis)
        even = 0.25 * prev + 0.75 * v
        odd = 0.75 * v + 0.25 * nxt
        stacked = jnp.stack([even, odd], axis=axis + 1)
        shape = list(v.shape)
        shape[axis] = 2 * n
        return stacked.reshape(shape)

    return up_axis(up_axis(x, 1), 2)
