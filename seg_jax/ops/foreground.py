"""Foreground colour where the alpha is soft, so a new background does not inherit the old room's colour.

A soft edge pixel of the frame is a mix ``I = a F + (1 - a) B`` of the person's colour F and the old background
B. Blending the frame itself over a new background keeps that ``(1 - a) B`` share: a white wall leaves a light
halo round the hair, a green screen a green fringe. Blending the estimated F instead removes it.

The estimate follows blur fusion (Forte & Pitie, "Approximate Fast Foreground Colour Estimation", ICIP 2021):
two rounds, a wide one and a narrow one, of

    F_s = box(F w) / box(w),  w = a^POWER              (smooth foreground from the mostly-person pixels)
    B_s = box(B w'') / box(w''),  w'' = (1 - a)^POWER  (smooth old background from the mostly-room pixels)
    F   = argmin |I - a F - (1 - a) B_s|^2 + LAM (1 - a) |F - F_s|^2     (per pixel, closed form)

starting from F = B = I; the narrow round keeps the wide round's B_s (already smooth). Two departures from the
paper, measured on the val split with ``seg_jax.bench.spill``: the weights are a power of the alpha (half-mixed
edge pixels barely pollute the smooth colours), and the per-pixel step is the regularised solve above instead of
the fixed step ``a (I - a F_s - (1 - a) B_s)``, which removed the old colour too but replaced the edge's own
detail by the smooth F_s. The settings below trade a flat old colour (a green screen: a wide window and the
wide B_s are best) against a textured room (a narrower window and a local B are better); see
results/tuning/spill-tuning-val.md.

The smooth fields are computed at reduced resolution (the wide round at 1/4, the narrow one at 1/2); only the
last solve, which carries the per-pixel detail of I, runs at full resolution.
Every box is an O(1)-per-pixel box mean (:mod:`seg_jax.ops.filters`). Where a = 1 the result is exactly I;
where a = 0 it is not used by the blend.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import box_mean
from seg_jax.ops.resize import downscale_mean, to_float

_EPS = 1e-4
LAM = 0.05   # weight of the smoothness prior in the per-pixel solve (see _correct; chosen on the val split)
WIDE_DIVISOR = 16  # the wide round's box radius is the short side / WIDE_DIVISOR (chosen on the val split)
LOCAL_B = False   # True: the narrow round re-estimates B from nearby room pixels (False: keeps the wide B_s)
B_PRIOR = 0.05    # weight of the wide B_s against the narrow window's room pixels
POWER = 4     # the smooth fields weight each pixel by a**POWER (person) and (1 - a)**POWER (background)


def default_radii(hw: tuple[int, int]) -> tuple[int, int]:
    """(wide, narrow) box radii in full-resolution pixels for a frame of size ``hw``: the wide box spans about
    1/8 of the short side (far enough to reach pure person and pure background colours across a soft hair
    band), the narrow one follows the colour changes along the edge."""
    return max(8, round(min(hw) / WIDE_DIVISOR)), 4


def _upsample_axis(x: jax.Array, k: int, axis: int) -> jax.Array:
    """Bilinear (half-pixel centres, edges clamped) upsampling of one axis by the integer ``k``: k phases of
    slices and adds, interleaved (elementwise work that XLA fuses, no gathers)."""
    n = x.shape[axis]
    first, last = jax.lax.slice_in_dim(x, 0, 1, axis=axis), jax.lax.slice_in_dim(x, n - 1, n, axis=axis)
    prev = jnp.concatenate([first, jax.lax.slice_in_dim(x, 0, n - 1, axis=axis)], axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x, 1, n, axis=axis), last], axis)
    phases = []
    for m in range(k):
        t = (m + 0.5) / k - 0.5
        phases.append(x + t * (nxt - x) if t >= 0 else x - t * (prev - x))
    shape = list(x.shape)
    shape[axis] = n * k
    return jnp.stack(phases, axis=axis + 1).reshape(shape)


def upsample(x: jax.Array, k: int, hw: tuple[int, int]) -> jax.Array:
    """(ceil(H / k), ceil(W / k), C) block grid (as :func:`seg_jax.ops.resize.downscale_mean` makes it) ->
    (H, W, C) bilinear, cropped to ``hw``."""
    if k == 1:
        return x[:hw[0], :hw[1]]
    return _upsample_axis(_upsample_axis(x, k, 0), k, 1)[:hw[0], :hw[1]]


def _correct(image: jax.Array, alpha: jax.Array, f_s: jax.Array, b_s: jax.Array) -> jax.Array:
    """The F that best explains the pixel next to the smooth fields, clipped to [0, 1]; all (H, W, 3) but alpha
    (H, W, 1):

        argmin_F |I - a F - (1 - a) B_s|^2 + LAM (1 - a) |F - F_s|^2
          = F_s + a / (a^2 + LAM (1 - a)) (I - a F_s - (1 - a) B_s)

    It is I where a = 1 (the prior fades out where the pixel is all person), F_s where a = 0, and the
    composite's share of the correction, a * gain, never exceeds 1 (noise in I is not amplified in a F).
    """
    gain = alpha / (alpha * alpha + LAM * (1.0 - alpha))
    return jnp.clip(f_s + gain * (image - alpha * f_s - (1.0 - alpha) * b_s), 0.0, 1.0)


def smooth_fields(frame: jax.Array, alpha: jax.Array, radii: Optional[tuple[int, int]] = None) -> jax.Array:
    """The two rounds' smooth fields: (frame (H, W, 3) uint8 or float, alpha (H, W)) -> (ceil(H / 2),
    ceil(W / 2), 6): the narrow round's F_s and B_s, at 1/2 resolution. :func:`foreground_from_fields`
    finishes F at full resolution.

    ``radii``: (wide, narrow) box radii in full-resolution pixels (static; default :func:`default_radii`).
    Split from the full-resolution step so that callers can jit the two separately (in one XLA computation on
    CPU the box sums were fused into the full-resolution pass and recomputed per pixel).
    """
    image = to_float(frame)
    a = jnp.clip(alpha.astype(jnp.float32), 0.0, 1.0)[..., None]
    wide, narrow = radii if radii is not None else default_radii(image.shape[:2])
    i2, a2 = downscale_mean(image, 2), downscale_mean(a, 2)
    i4, a4 = downscale_mean(i2, 2), downscale_mean(a2, 2)
    # wide round at 1/4, from F = B = I
    wa, wb = a4 ** POWER, (1.0 - a4) ** POWER
    p = box_mean(jnp.concatenate([i4 * wa, i4 * wb, wa, wb], axis=-1), max(1, round(wide / 4)))
    f_s = p[..., 0:3] / (p[..., 6:7] + _EPS)
    b_s = p[..., 3:6] / (p[..., 7:8] + _EPS)
    # narrow round at 1/2: F from the wide round's corrected F; B the wide B_s (LOCAL_B: the nearby room of I)
    fb = upsample(jnp.concatenate([f_s, b_s], axis=-1), 2, i2.shape[:2])
    b_s = fb[..., 3:6]
    f1 = _correct(i2, a2, fb[..., 0:3], b_s)
    wa = a2 ** POWER
    planes = [f1 * wa, wa]
    if LOCAL_B:
        wb = (1.0 - a2) ** POWER
        planes += [i2 * wb, wb]
    sums = box_mean(jnp.concatenate(planes, axis=-1), max(1, round(narrow / 2)))
    f_n = sums[..., 0:3] / (sums[..., 3:4] + _EPS)
    if LOCAL_B:
        b_s = (sums[..., 4:7] + B_PRIOR * b_s) / (sums[..., 7:8] + B_PRIOR)
    return jnp.concatenate([f_n, b_s], axis=-1)


def expand_half(fields: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """Half-resolution fields -> full resolution by pixel repetition: they are smooth at the half-resolution
    scale, and repeating is several times cheaper on CPU than a bilinear upsample of the full-size frame."""
    return jnp.repeat(jnp.repeat(fields, 2, axis=0), 2, axis=1)[:hw[0], :hw[1]]


def old_background(fields: jax.Array, hw: tuple[int, int]) -> jax.Array:
    """:func:`smooth_fields` -> the smooth old background B (H, W, 3) float."""
    return expand_half(fields[..., 3:6], hw)


def foreground_from_fields(frame: jax.Array, alpha: jax.Array, fields: jax.Array) -> jax.Array:
    """(frame (H, W, 3), alpha (H, W), :func:`smooth_fields` of both) -> foreground F (H, W, 3) float [0, 1]."""
    image = to_float(frame)
    a = jnp.clip(alpha.astype(jnp.float32), 0.0, 1.0)[..., None]
    full = expand_half(fields, image.shape[:2])
    return _correct(image, a, full[..., 0:3], full[..., 3:6])


def estimate_foreground(frame: jax.Array, alpha: jax.Array,
                        radii: Optional[tuple[int, int]] = None) -> tuple[jax.Array, jax.Array]:
    """(frame (H, W, 3) uint8 or float [0, 1], alpha (H, W) in [0, 1]) -> (foreground F, old background B),
    both (H, W, 3) float in [0, 1].

    ``radii``: (wide, narrow) box radii in full-resolution pixels (static; default :func:`default_radii`).
    F is meant for ``a F + (1 - a) B_new``; B is the smooth estimate of the room behind the person.
    """
    fields = smooth_fields(frame, alpha, radii)
    return foreground_from_fields(frame, alpha, fields), old_background(fields, frame.shape[:2])
