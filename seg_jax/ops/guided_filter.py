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
from seg_jax.ops.resize import downscale_mean, luma, resize, to_float

# The coefficient maths runs on channel-first planes (C, h, w) stacked so that each box mean is one call over
# every plane that needs it: two box means per fit instead of 7 (grey) or 17 (colour) separate ones, each
# along contiguous rows (faster on CPU than per-plane box means; measured: results/MEASUREMENTS.md,
# 'guided_filter: stacked box means').


def _gray_coefficients(p: jax.Array, guide: jax.Array, r: int, eps: float) -> jax.Array:
    """p (h, w), grey guide (h, w) -> the smoothed coefficients (2, h, w): a, b of ``q = a * I + b``."""
    mean_i, mean_p, mean_ip, mean_ii = box_mean(jnp.stack([guide, p, guide * p, guide * guide]), r, axes=(1, 2))
    a = (mean_ip - mean_i * mean_p) / (mean_ii - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return box_mean(jnp.stack([a, b]), r, axes=(1, 2))


def _color_coefficients(p: jax.Array, guide: jax.Array, r: int, eps: float) -> jax.Array:
    """p (h, w), colour guide (h, w, 3) -> the smoothed coefficients (4, h, w): a_r, a_g, a_b, b of
    ``q = a . I + b``, from the per-pixel 3x3 covariance solved in closed form (adjugate / determinant)."""
    ir, ig, ib = guide[..., 0], guide[..., 1], guide[..., 2]
    means = box_mean(jnp.stack([ir, ig, ib, p, ir * p, ig * p, ib * p,
                                ir * ir, ir * ig, ir * ib, ig * ig, ig * ib, ib * ib]), r, axes=(1, 2))
    mr, mg, mb, mean_p, m_rp, m_gp, m_bp, m_rr, m_rg, m_rb, m_gg, m_gb, m_bb = means
    cr, cg, cb = m_rp - mr * mean_p, m_gp - mg * mean_p, m_bp - mb * mean_p
    s_rr = m_rr - mr * mr + eps
    s_rg = m_rg - mr * mg
    s_rb = m_rb - mr * mb
    s_gg = m_gg - mg * mg + eps
    s_gb = m_gb - mg * mb
    s_bb = m_bb - mb * mb + eps
    # inverse of the symmetric matrix [[rr, rg, rb], [rg, gg, gb], [rb, gb, bb]]
    c_rr = s_gg * s_bb - s_gb * s_gb
    c_rg = s_gb * s_rb - s_rg * s_bb
    c_rb = s_rg * s_gb - s_gg * s_rb
    c_gg = s_rr * s_bb - s_rb * s_rb
    c_gb = s_rb * s_rg - s_rr * s_gb
    c_bb = s_rr * s_gg - s_rg * s_rg
    det = s_rr * c_rr + s_rg * c_rg + s_rb * c_rb
    inv_det = 1.0 / det
    a_r = (c_rr * cr + c_rg * cg + c_rb * cb) * inv_det
    a_g = (c_rg * cr + c_gg * cg + c_gb * cb) * inv_det
    a_b = (c_rb * cr + c_gb * cg + c_bb * cb) * inv_det
    b = mean_p - (a_r * mr + a_g * mg + a_b * mb)
    return box_mean(jnp.stack([a_r, a_g, a_b, b]), r, axes=(1, 2))


def guided_filter(p: jax.Array, guide: jax.Array, radius: int = 4, eps: float = 1e-2) -> jax.Array:
    """Guided filter of ``p`` (H, W) by ``guide`` (H, W) grey or (H, W, 3) colour, values in [0, 1]."""
    p = p.astype(jnp.float32)
    guide = guide.astype(jnp.float32)
    if guide.ndim == 3:
        a_r, a_g, a_b, b = _color_coefficients(p, guide, radius, eps)
        return a_r * guide[..., 0] + a_g * guide[..., 1] + a_b * guide[..., 2] + b
    a, b = _gray_coefficients(p, guide, radius, eps)
    return a * guide + b


def guided_coefficients(p_low: jax.Array, guide_low: jax.Array, radius: int, eps: float,
                        color: bool = True, subsample: int = 1) -> jax.Array:
    """The fast guided filter's fit at low resolution: planes (4, h', w') = a_r, a_g, a_b, b (colour guide) or
    (2, h', w') = a, b (luma guide) of ``q = a . I + b``. ``p_low`` (h, w); ``guide_low`` (h, w, 3) in [0, 1].

    ``subsample``: fit on ``p_low`` and ``guide_low`` shrunk by this factor (block means; radius divided by it),
    so (h', w') = (h, w) / subsample (He & Sun's subsampling; sizes not divisible by it fit at (h, w)). The
    planes lie on the same half-pixel grid either way, so the later stages do not change.
    """
    p_low = p_low.astype(jnp.float32)
    guide_low = guide_low.astype(jnp.float32)
    h, w = p_low.shape
    if subsample > 1 and h % subsample == 0 and w % subsample == 0:
        p_low, guide_low = downscale_mean(p_low, subsample), downscale_mean(guide_low, subsample)
        radius = max(1, radius // subsample)
    if color:
        return _color_coefficients(p_low, guide_low, radius, eps)
    return _gray_coefficients(p_low, luma(guide_low), radius, eps)


def coefficients_to_width(planes: jax.Array, width: int) -> jax.Array:
    """Planes (C, h, w) -> (h, width, C): the column pass of the bilinear upsample, done at low resolution
    (``resize`` with the height unchanged: whole-row gathers on the transposed planes)."""
    return resize(jnp.moveaxis(planes, 0, -1), (planes.shape[1], width), antialias=False)


def apply_coefficients(coef: jax.Array, guide_high: jax.Array) -> jax.Array:
    """(h, W, C) coefficients from :func:`coefficients_to_width` -> alpha (H, W) float32 in [0, 1] for the
    full-resolution guide ``guide_high`` (H, W, 3), float in [0, 1] or uint8 (converted inside the loop: no
    full-resolution float copy of the frame is materialised). C = 4: colour guide; C = 2: luma guide."""
    size = tuple(guide_high.shape[:2])
    coef = resize(coef, size, antialias=False)  # only the row pass is left: whole-row gathers, fused below
    high = to_float(guide_high)
    if coef.shape[-1] == 4:
        # written out, not jnp.sum(..., axis=-1): a channel reduction becomes a separate reduce fusion on CPU
        # that re-gathers the coefficients (much slower; measured: results/MEASUREMENTS.md,
        # 'guided_filter: channel sum written out')
        q = coef[..., 0] * high[..., 0] + coef[..., 1] * high[..., 1] + coef[..., 2] * high[..., 2] + coef[..., 3]
    else:
        q = coef[..., 0] * luma(high) + coef[..., 1]
    return jnp.clip(q, 0.0, 1.0)


def fast_guided_upsample(p_low: jax.Array, guide_low: jax.Array, guide_high: jax.Array, radius: int = 1,
                         eps: float = 1e-3, color: bool = True, subsample: int = 1) -> jax.Array:
    """Upsample ``p_low`` (h, w) to the size of ``guide_high`` (H, W, 3) following its edges.

    ``guide_high`` is the full-resolution frame, float in [0, 1] or uint8 (converted on the fly).
    ``guide_low`` (h, w, 3) is the frame at the low resolution (what the network saw); ``radius`` is in
    low-resolution pixels; ``eps`` regularises (larger = closer to plain bilinear upsampling); ``subsample``
    fits at a further 1/subsample (see :func:`guided_coefficients`). Returns (H, W) float32 clipped to [0, 1].

    The three stages (:func:`guided_coefficients`, :func:`coefficients_to_width`, :func:`apply_coefficients`)
    are public so that a caller can jit them separately: inside one XLA computation on CPU each stage is
    fused into the next one's gathers and recomputed per output pixel (XLA drops optimization barriers).
    :mod:`seg_jax.inference.streaming` jits them apart, which made its end-to-end step faster on CPU (measured:
    results/MEASUREMENTS.md, 'streaming: separately jitted pieces').
    """
    planes = guided_coefficients(p_low, guide_low, radius, eps, color, subsample)
    return apply_coefficients(coefficients_to_width(planes, int(guide_high.shape[1])), guide_high)
