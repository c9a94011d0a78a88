"""The paper's baseline U-Net (31,055,297 parameters incl. BatchNorm statistics)."""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.models.layers import KERAS_BN_EPSILON, KERAS_BN_MOMENTUM


class ConvBlock(nn.Module):
    """2 x [Conv 3x3 'same' (bias) -> BatchNorm -> ReLU]. (N, H, W, C) -> (N, H, W, features)."""
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        for i in range(2):
            x = nn.Conv(self.features, (3, 3), padding="SAME", dtype=self.dtype, name=f"conv_{i}")(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=KERAS_BN_MOMENTUM, epsilon=KERAS_BN_EPSILON,
                             dtype=self.dtype, name=f"bn_{i}")(x)
            x = nn.relu(x)
        return x


class UpConv2x2(nn.Module):
    """``nn.ConvTranspose(features, (2, 2), strides=(2, 2), padding="SAME")`` with the same parameters (kernel
    (2, 2, C, F), bias (F,), same initialisers), written as one matrix product per input pixel: output pixel
    (2i + a, 2j + b) is ``x[i, j] @ kernel[1 - a, 1 - b] + bias``. (N, H, W, C) -> (N, 2H, 2W, F).

    Why: XLA's CPU backend computes the transposed convolution's kernel gradient as a dilated convolution
    (a large share of a U-Net train step; measured: results/MEASUREMENTS.md, 'unet: transposed-conv gradient
    on CPU'); as a product its gradients are products too.
    """
    features: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2, 2, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        n, h, w, _ = x.shape
        y = jnp.einsum("nhwi,abio->nhawbo", x.astype(self.dtype), kernel[::-1, ::-1].astype(self.dtype))
        return y.reshape(n, 2 * h, 2 * w, self.features) + bias.astype(self.dtype)


class UNet(nn.Module):
    """Baseline U-Net: encoder 64-128-256-512, bridge 1024, transposed-conv decoder, 1x1 head.

    Input (N, H, W, 3) float in [0, 1], H and W multiples of 16. Output logits (N, H, W, 1) float32.
    """
    widths: Sequence[int] = (64, 128, 256, 512)
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        x = images.astype(self.dtype)
        skips = []
        for level, width in enumerate(self.widths):
            x = ConvBlock(width, dtype=self.dtype, name=f"down_{level}")(x, train=train)
            skips.append(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = ConvBlock(2 * self.widths[-1], dtype=self.dtype, name="bridge")(x, train=train)
        for level, width in reversed(list(enumerate(self.widths))):
            x = UpConv2x2(width, dtype=self.dtype, name=f"upconv_{level}")(x)
            x = jnp.concatenate([x, skips[level]], axis=-1)
            x = ConvBlock(width, dtype=self.dtype, name=f"up_{level}")(x, train=train)
        return nn.Conv(1, (1, 1), dtype=self.dtype, name="head")(x).astype(jnp.float32)
