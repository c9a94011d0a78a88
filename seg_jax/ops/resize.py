"""Image resizing and colour conversion on device (jit-friendly; sizes are static)."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

# ITU-R BT.601 luma weights, for a single-channel guide.
LUMA = (0.299, 0.587, 0.114)


def to_float(frame: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float input is passed through (as float32)."""
    if jnp.issubdtype(frame.dtype, jnp.integer):
        return frame.astype(jnp.float32) * (1.0 / 255.0)
    return frame.astype(jnp.float32)


@functools.lru_cache(maxsize=256)
def _taps(in_size: int, out_size: int, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (out_size, K) of a triangle (linear) kernel, half-pixel centres.

    With ``antialias`` and shrinking, the kernel is widened by the scale (as ``jax.image.resize`` and PIL do);
    taps outside the image are dropped and the rest renormalised.
    """
    scale = out_size / in_size
    width = max(1.0 / scale, 1.0) if antialias else 1.0
    centres = (np.arange(out_size) + 0.5) / scale - 0.5
    k = int(np.ceil(2 * width)) + 1
    first = np.floor(centres - width).astype(np.int64) + 1
    idx = first[:, None] + np.arange(k)[None, :]
    w = np.maximum(0.0, 1.0 - np.abs(idx - centres[:, None]) / width)
    w = np.where((idx >= 0) & (idx < in_size), w, 0.0)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    idx = np.clip(idx, 0, in_size - 1)
    # Drop taps that have zero weight for every output: sort each row's taps by weight (largest first) and keep
    # as many as the row with the most non-zero weights needs (linear upsampling: 2 of the 3; exact, only the
    # summation order changes).
    order = np.argsort(-w, axis=1, kind="stable")
    idx, w = np.take_along_axis(idx, order, 1), np.take_along_axis(w, order, 1)
    keep = max(1, int((w > 0).sum(axis=1).max()))
    return idx[:, :keep].astype(np.int32), w[:, :keep].astype(np.float32)


def _resize_rows(x: jax.Array, out_size: int, antialias: bool) -> jax.Array:
    """Resize axis 0. Written as K whole-row gathers on a 2-D view (XLA's CPU gather is fast for those and
    slow for gathers with several trailing axes)."""
    n = x.shape[0]
    if n == out_size:
        return x
    idx, w = _taps(n, out_size, antialias)
    x2 = jax.lax.optimization_barrier(x.reshape(n, -1))
    y = None
    for k in range(idx.shape[1]):
        term = jnp.take(x2, jnp.asarray(idx[:, k]), axis=0) * jnp.asarray(w[:, k], x.dtype)[:, None]
        y = term if y is None else y + term
    # The barriers ask XLA not to fuse producers into the gathers and the gathers into consumers (it recomputes
    # them per use: much slower inside the guided filter and the background blur on CPU; measured:
    # results/MEASUREMENTS.md, 'resize: gathers fused into consumers'). XLA's CPU compiler in jax 0.10 drops
    # them, so the CPU hot paths jit such stages separately (seg_jax.inference.streaming's guided upsample,
    # seg_jax.ops.composite.render's blur).
    return jax.lax.optimization_barrier(y.reshape((out_size,) + x.shape[1:]))


def resize(x: jax.Array, size: tuple[int, int], antialias: bool = True) -> jax.Array:
    """Bilinear resize of the first two axes of (H, W) or (H, W, C) to ``size`` = (h, w).

    ``antialias`` low-pass filters when shrinking (as OpenCV's INTER_AREA does), which keeps thin structures
    and avoids aliasing when a 1280x720 frame goes down to the model's 160x288. Same result as
    ``jax.image.resize(..., "linear", antialias)``, computed with a few row gathers instead of dense resampling
    matrices (faster on CPU at video sizes; measured: results/MEASUREMENTS.md, 'resize: row gathers vs dense
    matrices').
    """
    h, w = int(size[0]), int(size[1])
    in_h, in_w = int(x.shape[0]), int(x.shape[1])
    if (in_h, in_w) == (h, w):
        return x
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    perm = (1, 0) + tuple(range(2, x.ndim))
    if in_w == w:
        return _resize_rows(x, h, antialias)
    if in_h == h:
        return jnp.transpose(_resize_rows(jnp.transpose(x, perm), w, antialias), perm)
    # Order of the two passes: the column pass runs on a transposed copy, so do it on the smaller array.
    # Rows first transposes (h, in_w) and (h, w); columns first transposes (in_h, in_w) and (in_h, w). Shrinking
    # (the network input) -> rows first; enlarging (the alpha / coefficients to the frame) -> columns first,
    # at the low resolution, and the last pass (whole-row gathers) writes the full-resolution output directly.
    # Faster than always rows-first when enlarging to video sizes (measured: results/MEASUREMENTS.md,
    # 'resize: order of the two passes'); same values up to float rounding.
    k_h, k_w = _taps(in_h, h, antialias)[0].shape[1], _taps(in_w, w, antialias)[0].shape[1]
    transpose_cost = 4  # a strided transpose costs about four gathered rows per element on CPU
    rows_first = transpose_cost * (h * in_w + h * w) + k_h * h * in_w + k_w * h * w
    cols_first = transpose_cost * (in_h * in_w + in_h * w) + k_w * in_h * w + k_h * h * w
    if rows_first <= cols_first:
        y = _resize_rows(x, h, antialias)
        return jnp.transpose(_resize_rows(jnp.transpose(y, perm), w, antialias), perm)
    y = jnp.transpose(_resize_rows(jnp.transpose(x, perm), w, antialias), perm)
    return _resize_rows(y, h, antialias)


def downscale_mean(x: jax.Array, factor: int) -> jax.Array:
    """(H, W, ...) -> (ceil(H / factor), ceil(W / factor), ...): the mean of each factor x factor block (edges
    replicated to fill the last blocks), as factor**2 strided slices summed in one pass over the input."""
    if factor == 1:
        return x
    h, w = x.shape[:2]
    ph, pw = -h % factor, -w % factor
    if ph or pw:
        x = jnp.pad(x, ((0, ph), (0, pw)) + ((0, 0),) * (x.ndim - 2), mode="edge")
    total = None
    for i in range(factor):
        for j in range(factor):
            block = x[i::factor, j::factor]
            total = block if total is None else total + block
    return total * (1.0 / factor ** 2)


def luma(rgb: jax.Array) -> jax.Array:
    """(H, W, 3) float -> (H, W) luma."""
    return rgb[..., 0] * LUMA[0] + rgb[..., 1] * LUMA[1] + rgb[..., 2] * LUMA[2]


def to_uint8(x: jax.Array) -> jax.Array:
    """float [0, 1] -> uint8, rounded and clipped."""
    return jnp.clip(jnp.round(x * 255.0), 0, 255).astype(jnp.uint8)
