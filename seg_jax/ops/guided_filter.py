"""Guided filter (He, Sun & Tang 2010/2013) and its fast upsampling form (He & Sun 2015), in JAX.

``fast_guided_upsample`` turns a low-resolution alpha into a full-resolution one that follows the edges of the
full-resolution frame: the local linear model ``q = A * I + b`` is fitted at low resolution (where the network
ran), ``A`` and ``b`` are upsampled bilinearly, and applied to the full-resolution guide ``I``. Cost at full
resolution is a bilinear upsample and a multiply-add per pixel.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import box_mean
from seg_jax.ops.resize import luma, resize, to_float


def _gray_coefficients(p: jax.Array, guide: jax.Array, r: int, eps: float) -> tuple[jax.Array, jax.Array]:
    mean_i = box_mean(guide, r)
    mean_p = box_mean(p, r)
    cov_ip = box_mean(guide * p, r) - mean_i * mean_p
    var_i = box_mean(guide * guide, r) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, r), box_mean(b, r)


def _color_coefficients(p: jax.Array, guide: jax.Array, r: int, eps: float) -> tuple[jax.Array, jax.Array]:
    """Colour guide (H, W, 3): per-pixel 3x3 covariance, solved in closed form (adjugate / determinant)."""
    mean_i = box_mean(guide, r)                                   # (h, w, 3)
    mean_p = box_mean(p, r)                                       # (h, w)
    cov_ip = box_mean(guide * p[..., None], r) - mean_i * mean_p[..., None]
    ir, ig, ib = guide[..., 0], guide[..., 1], guide[..., 2]
    mr, mg, mb = mean_i[..., 0], mean_i[..., 1], mean_i[..., 2]
    s_rr = box_mean(ir * ir, r) - mr * mr + eps
    s_rg = box_mean(ir * ig, r) - mr * mg
    s_rb = box_mean(ir * ib, r) - mr * mb
    s_gg = box_mean(ig * ig, r) - mg * mg + eps
    s_gb = box_mean(ig * ib, r) - mg * mb
    s_bb = box_mean(ib * ib, r) - mb * mb + eps
    # inverse of the symmetric matrix [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]]
    c_rr = s_gg * s_bb - s_gb * s_gb
    c_rg = s_gb * s_rb - s_rg * s_bb
    c_rb = s_rg * s_gb - s_gg * s_rb
    c_gg = s_rr * s_bb - s_rb * s_rb
    c_gb = s_rb * s_rg - s_rr * s_gb
    c_bb = s_rr * s_gg - s_rg * s_rg
    det = s_rr * c_rr + s_rg * c_rg + s_rb * c_rb
    inv_det = 1.0 / det
    cr, cg, cb = cov_ip[..., 0], cov_ip[..., 1], cov_ip[..., 2]
    a_r = (c_rr * cr + c_rg * cg + c_rb * cb) * inv_det
    a_g = (c_rg * cr + c_gg * cg + c_gb * cb) * inv_det
    a_b = (c_rb * cr + c_gb * cg + c_bb * cb) * inv_det
    a = jnp.stack([a_r, a_g, a_b], axis=-1)
    b = mean_p - jnp.sum(a * mean_i, axis=-1)
    return box_mean(a, r), box_mean(b, r)


def guided_filter(p: jax.Array, guide: jax.Array, radius: int = 4, eps: float = 1e-2) -> jax.Array:
    """Guided filter of ``p`` (H, W) by ``guide`` (H, W) grey or (H, W, 3) colour, values in [0, 1]."""
    p = p.astype(jnp.float32)
    guide = guide.astype(jnp.float32)
    if guide.ndim == 3:
        a, b = _color_coefficients(p, guide, radius, eps)
        return jnp.sum(a * guide, axis=-1) + b
    a, b = _gray_coefficients(p, guide, radius, eps)
    return a * guide + b


def fast_guided_upsample(p_low: jax.Array, guide_low: jax.Array, guide_high: jax.Array, radius: int = 1,
                         eps: float = 1e-3, color: bool = True) -> jax.Array:
    """Upsample ``p_low`` (h, w) to the size of ``guide_high`` (H, W, 3) following its edges.

    ``guide_high`` is the full-resolution frame, float in [0, 1] or uint8 (converted on the fly).
    ``guide_low`` (h, w, 3) is the frame at the low resolution (what the network saw); ``radius`` is in
    low-resolution pixels; ``eps`` regularises (larger = closer to plain bilinear upsampling). Returns
    (H, W) float32 clipped to [0, 1].
    """
    size = tuple(guide_high.shape[:2])
    p_low = p_low.astype(jnp.float32)
    # ``guide_high`` may be the uint8 frame itself: it is read once, converted inside the final fused loop
    # (no full-resolution float copy of the frame is materialised).
    high = to_float(guide_high)
    if color:
        a, b = _color_coefficients(p_low, guide_low.astype(jnp.float32), radius, eps)
        # one resize of the four coefficient planes (a_r, a_g, a_b, b) instead of two: the same per-channel
        # arithmetic, half the gathers and transposes at full resolution.
        coef = resize(jnp.concatenate([a, b[..., None]], axis=-1), size, antialias=False)
        # written out, not jnp.sum(..., axis=-1): a channel reduction becomes a separate reduce fusion on CPU
        # that re-gathers the coefficients (~6x slower at 1280x720)
        q = coef[..., 0] * high[..., 0] + coef[..., 1] * high[..., 1] + coef[..., 2] * high[..., 2] + coef[..., 3]
    else:
        a, b = _gray_coefficients(p_low, luma(guide_low.astype(jnp.float32)), radius, eps)
        coef = resize(jnp.stack([a, b], axis=-1), size, antialias=False)
        q = coef[..., 0] * luma(high) + coef[..., 1]
    return jnp.clip(q, 0.0, 1.0)
