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

    Small radii: window sums by doubling (sums over 2, 4, 8, ... neighbours, each from the previous one, then
    the window as a few of them end to end). The barriers ask XLA to keep each doubling as a buffer; XLA's
    CPU compiler drops them and fuses the chain, which still measured as fast as ``reduce_window`` at r = 3 and
    faster above (measured: results/MEASUREMENTS.md, 'filters: box sums by doubling'; same sums up to float
    rounding). Large radii: cumsum.
    """
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    window = 2 * r + 1
    if r <= 12:
        pad[axis] = (r, r)
        # power_sums[k][i] = x[i] + ... + x[i + 2**k - 1] over the padded input
        power_sums = [jnp.pad(x, pad)]
        while 2 ** len(power_sums) <= window:
            prev, half = power_sums[-1], 2 ** (len(power_sums) - 1)
            m = prev.shape[axis] - half
            power_sums.append(jax.lax.optimization_barrier(
                jax.lax.slice_in_dim(prev, 0, m, axis=axis) + jax.lax.slice_in_dim(prev, half, half + m, axis=axis)))
        out, offset = None, 0
        for k in reversed(range(len(power_sums))):
            if window & (1 << k):
                term = jax.lax.slice_in_dim(power_sums[k], offset, offset + n, axis=axis)
                out = term if out is None else out + term
                offset += 1 << k
        return out
    pad[axis] = (r + 1, r)
    c = jnp.cumsum(jnp.pad(x, pad), axis=axis)
    hi = jax.lax.slice_in_dim(c, 2 * r + 1, 2 * r + 1 + n, axis=axis)
    lo = jax.lax.slice_in_dim(c, 0, n, axis=axis)
    return hi - lo


def box_sum(x: jax.Array, r: int, axes: tuple[int, int] = (0, 1)) -> jax.Array:
    """(2r+1) x (2r+1) window sum over two axes (default the first two; zero padded)."""
    if r <= 0:
        return x
    return _box_sum_axis(_box_sum_axis(x, r, axes[0]), r, axes[1])


def _window_counts(n: int, r: int) -> np.ndarray:
    i = np.arange(n)
    return (np.minimum(i + r, n - 1) - np.maximum(i - r, 0) + 1).astype(np.float64)


def box_mean(x: jax.Array, r: int, axes: tuple[int, int] = (0, 1)) -> jax.Array:
    """(2r+1) x (2r+1) window mean over two axes (default the first two, e.g. (H, W, C); ``(1, 2)`` for
    (C, H, W) planes); borders average only the pixels inside."""
    if r <= 0:
        return x
    axes = tuple(a % x.ndim for a in axes)
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    inv = 1.0 / np.outer(_window_counts(h, r), _window_counts(w, r))  # a constant, not folded by XLA
    shape = [1] * x.ndim
    shape[axes[0]], shape[axes[1]] = h, w
    return box_sum(x, r, axes) * jnp.asarray(inv.reshape(shape), x.dtype)


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


def running_max(x: jax.Array, r: int, axis: int) -> jax.Array:
    """Max over a window of 2r+1 along ``axis`` (centred, -inf beyond the edges), by doubling: after k rounds
    each element holds the max of 2**k neighbours, and two overlapping such spans cover the window. The cost
    grows with log(r), not r (a direct window costs r comparisons per pixel)."""
    if r <= 0:
        return x
    n, width = x.shape[axis], 2 * r + 1
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    m = jnp.pad(x, pad, constant_values=-jnp.inf)
    span = 1
    while 2 * span <= width:
        length = m.shape[axis] - span
        m = jnp.maximum(jax.lax.slice_in_dim(m, 0, length, axis=axis),
                        jax.lax.slice_in_dim(m, span, span + length, axis=axis))
        span *= 2
    return jnp.maximum(jax.lax.slice_in_dim(m, 0, n, axis=axis),
                       jax.lax.slice_in_dim(m, width - span, width - span + n, axis=axis))


def max_filter(x: jax.Array, r: int) -> jax.Array:
    """Grey dilation with a (2r+1) square over the first two axes (separable running maxima)."""
    return running_max(running_max(x, int(r), 0), int(r), 1)


def min_filter(x: jax.Array, r: int) -> jax.Array:
    """Grey erosion with a (2r+1) square over the first two axes."""
    return -max_filter(-x, r)
