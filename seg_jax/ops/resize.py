"""Image resizing and colour conversion on device (jit-friendly; sizes are static)."""
from __future__ import annotations

import jax
import jax.numpy as jnp

# ITU-R BT.601 luma weights, for a single-channel guide.
LUMA = (0.299, 0.587, 0.114)


def to_float(frame: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float input is passed through (as float32)."""
    if jnp.issubdtype(frame.dtype, jnp.integer):
        return frame.astype(jnp.float32) * (1.0 / 255.0)
    return frame.astype(jnp.float32)


def resize(x: jax.Array, size: tuple[int, int], antialias: bool = True) -> jax.Array:
    """Bilinear resize of the first two axes of (H, W) or (H, W, C) to ``size`` = (h, w).

    ``antialias`` low-pass filters when shrinking (as OpenCV's INTER_AREA does), which keeps thin structures
    and avoids aliasing when a 1280x720 frame goes down to the model's 160x288.
    """
    h, w = size
    if tuple(x.shape[:2]) == (h, w):
        return x
    return jax.image.resize(x, (h, w) + tuple(x.shape[2:]), method="linear", antialias=antialias)


def luma(rgb: jax.Array) -> jax.Array:
    """(H, W, 3) float -> (H, W) luma."""
    return rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]


def to_uint8(x: jax.Array) -> jax.Array:
    """float [0, 1] -> uint8, rounded and clipped."""
    return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)
