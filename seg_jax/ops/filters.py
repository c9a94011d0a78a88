"""Separable O(1)-per-pixel filters on (H, W) or (H, W, C) arrays: box mean, Gaussian-like blur, max/min.

Written with cumulative sums and slicing (no grouped/depthwise convolution, which is slow on CPU XLA).
All radii are static Python ints; every function is jit-friendly.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np


def _box_sum_axis(x: jax.Array, r: int, axis: int) -> jax.Array:
    """Sum over the window [i - r, i + r] along ``axis`` with zero padding outside the array.

    Small radii: one ``reduce_window`` (shifted slices get duplicated by XLA's fusion when chained, and
    cumsum is slow on CPU); large radii: cumsum.
    """
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    if r <= 12:
        window = [1] * x.ndim
        window[axis] = 2 * r + 1
        pad[axis] = (r, r)
        return jax.lax.reduce_window(x, jnp.zeros((), x.dtype), jax.lax.add, tuple(window), (1,) * x.ndim, pad)
    pad[axis] = (r + 1, r)
    c = jnp.cumsum(jnp.pad(x, pad), axis=axis)
    hi = jax.lax.slice_in_dim(c, 2 * r + 1, 2 * r + 1 + n, axis=axis)
    lo = jax.lax.slice_in_dim(c, 0, n, axis=axis)
    return hi - lo


def box_sum(x: jax.Array, r: int) -> jax.Array:
    """(2r+1) x (2r+1) window sum over the first two axes (zero padded)."""
    if r <= 0:
        return x
    return _box_sum_axis(_box_sum_axis(x, r, 0), r, 1)


def _window_counts(n: int, r: int) -> np.ndarray:
    i = np.arange(n)
    return (np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1).astype(np.float64)


def box_mean(x: jax.Array, r: int) -> jax.Array:
    """(2r+1) x (2r+1) window mean over the first two axes; borders average only the pixels inside."""
    if r <= 0:
        return x
    h, w = x.shape[:2]
    inv = 1.0 / np.outer(_window_counts(h, r), _window_counts(w, r))  # a constant, not folded by XLA
    return box_sum(x, r) * jnp.asarray(inv.reshape((h, w) + (1,) * (x.ndim - 2)), x.dtype)


def box_radius_for_sigma(sigma: float, passes: int = 3) -> int:
    """Radius of a box filter whose ``passes``-fold repetition has (about) standard deviation ``sigma``."""
    if sigma <= 0:
        return 0
    # variance of one box of width 2r+1 is ((2r+1)^2 - 1) / 12
    return max(1, int(round((math.sqrt(12.0 * sigma * sigma / passes + 1.0) - 1.0) / 2.0)))


def gaussian_blur(x: jax.Array, sigma: float, passes: int = 3) -> jax.Array:
    """Gaussian-like blur (``passes`` box means, edge-normalised) over the first two axes."""
    r = box_radius_for_sigma(sigma, passes)
    if r == 0:
        return x
    for _ in range(passes):
        x = box_mean(x, r)
    return x


def max_filter(x: jax.Array, r: int) -> jax.Array:
    """Grey dilation with a (2r+1) square over the first two axes."""
    if r <= 0:
        return x
    window = (2 * r + 1, 2 * r + 1) + (1,) * (x.ndim - 2)
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, window, (1,) * x.ndim, "SAME")


def min_filter(x: jax.Array, r: int) -> jax.Array:
    """Grey erosion with a (2r+1) square over the first two axes."""
    return -max_filter(-x, r)
