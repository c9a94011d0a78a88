"""Light wrap: a little of the new background's light spills over the person's edge.

A person filmed in a room is lit by it; pasted on a new background, their edge is lit by the old room, which
makes the cut-out look stuck on. Light wrap mixes the blurred new background (its colours near the person)
into a band just inside the person's edge, fading to nothing a few pixels in:

    out = C + strength * band * (L - C),   band = a * clip(2 (1 - blur(a)), 0, 1)

with C the composite, L the new background blurred by normalised convolution weighted by (1 - a) (the light
around the person, not the part the person hides), and blur(a) the alpha blurred with the same sigma, which is
1 deep inside the person (band 0) and about 1/2 on the edge. The blurred fields are computed at 1/4 resolution
(:func:`wrap_fields`), upsampled to 1/2 and repeated in the full-resolution pass (:func:`apply_light_wrap`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import gaussian_blur
from seg_jax.ops.foreground import expand_half, upsample
from seg_jax.ops.resize import downscale_mean, to_float

FACTOR = 4  # resolution of the blurred fields: 1/FACTOR


def wrap_sigma(hw: tuple[int, int]) -> float:
    """The wrap's blur sigma in full-resolution pixels for a frame of size ``hw`` (about 1/50 of the short side,
    so the band is as wide, relative to the person, at any resolution)."""
    return max(2.0, min(hw) / 50.0)


def wrap_fields(alpha: jax.Array, background: jax.Array, sigma: float) -> jax.Array:
    """(alpha (H, W), new background (H, W, 3) uint8 or float, static sigma) -> (ceil(H / 4), ceil(W / 4), 4):
    the blurred alpha and the light L (normalised convolution of the background by 1 - a, the plain blur where
    the person covers the whole window)."""
    a = downscale_mean(alpha.astype(jnp.float32)[..., None], FACTOR)
    bg = downscale_mean(to_float(background), FACTOR)
    s = sigma / FACTOR
    k = 0.02
    light = (gaussian_blur(bg * (1.0 - a), s) + k * gaussian_blur(bg, s)) / (gaussian_blur(1.0 - a, s) + k)
    return jnp.concatenate([gaussian_blur(a, s), light], axis=-1)


def edge_band(alpha: jax.Array, blurred_alpha: jax.Array) -> jax.Array:
    """(alpha (H, W, 1), its blur (H, W, 1)) -> the wrap's weight (H, W, 1) in [0, 1]: 0 outside the person and
    deep inside, largest on the person's side of the edge."""
    return alpha * jnp.clip(2.0 * (1.0 - blurred_alpha), 0.0, 1.0)


def apply_light_wrap(image: jax.Array, alpha: jax.Array, fields: jax.Array, strength: float) -> jax.Array:
    """(composite (H, W, 3) float, alpha (H, W), :func:`wrap_fields`, strength in [0, 1]) -> (H, W, 3) float.
    Strength 0 returns ``image`` unchanged."""
    if strength == 0:
        return image
    hw = image.shape[:2]
    up = expand_half(upsample(fields, FACTOR // 2, (-(-hw[0] // 2), -(-hw[1] // 2))), hw)
    w = strength * edge_band(alpha.astype(jnp.float32)[..., None], up[..., 0:1])
    return image + w * (up[..., 1:4] - image)
