"""Alpha refinement (temporal smoothing, threshold, expand/shrink, feather) and background compositing.

Everything is on device and jit-friendly. Options that change array shapes or control flow (mode, radii) live in
the frozen, hashable :class:`AlphaOptions` / :class:`CompositeOptions` so they can be static jit arguments;
per-frame values (previous alpha, background image, smoothing strength) are arrays.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import gaussian_blur, max_filter, min_filter
from seg_jax.ops.resize import resize, to_float, to_uint8

MODES = ("blur", "image", "video", "color", "mask", "green")
GREEN = (0, 177, 64)  # chroma-key green


@dataclasses.dataclass(frozen=True)
class AlphaOptions:
    """How the model's soft alpha becomes the compositing alpha.

    Attributes:
      threshold: None keeps the soft alpha; a value in (0, 1) makes a hard mask (alpha >= threshold).
      expand: grow (> 0) or shrink (< 0) the person by this many pixels (grey dilation / erosion).
      feather: soften the edge with a Gaussian-like blur of this sigma in pixels (0 = off).
    """
    threshold: Optional[float] = None
    expand: int = 0
    feather: float = 0.0


@dataclasses.dataclass(frozen=True)
class CompositeOptions:
    """Attributes:
      mode: one of MODES. 'image' and 'video' take a background array, 'color' / 'green' a colour.
      blur_sigma: background blur strength in full-resolution pixels (mode 'blur').
      color: RGB 0..255 for mode 'color'.
    """
    mode: str = "blur"
    blur_sigma: float = 12.0
    color: tuple[int, int, int] = (0, 0, 0)

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")


def smooth_alpha(alpha: jax.Array, previous: jax.Array, strength: jax.Array | float) -> jax.Array:
    """Exponential moving average: ``strength`` in [0, 1) is the weight of the previous alpha (0 = off)."""
    return strength * previous + (1.0 - strength) * alpha


def refine_alpha(alpha: jax.Array, options: AlphaOptions) -> jax.Array:
    """Apply threshold, expand/shrink and feather (in that order) to an (H, W) alpha in [0, 1]."""
    a = alpha.astype(jnp.float32)
    if options.threshold is not None:
        a = (a >= options.threshold).astype(jnp.float32)
    if options.expand > 0:
        a = max_filter(a, int(options.expand))
    elif options.expand < 0:
        a = min_filter(a, int(-options.expand))
    if options.feather > 0:
        a = gaussian_blur(a, float(options.feather))
    return jnp.clip(a, 0.0, 1.0)


def blurred_background(frame: jax.Array, alpha: jax.Array, sigma: float) -> jax.Array:
    """Blur of the background only (the person's colours do not bleed into it), computed at 1/4 resolution.

    ``frame`` (H, W, 3) float [0, 1], ``alpha`` (H, W). Normalised convolution:
    blur(frame * (1 - alpha)) / blur(1 - alpha), falling back to the plain blur deep inside the person.
    """
    h, w = frame.shape[:2]
    factor = 4 if sigma >= 4 else 1
    small = (max(1, h // factor), max(1, w // factor))
    s = sigma / factor
    f_small = resize(frame, small)
    weight = resize(1.0 - alpha, small)[..., None]
    num = gaussian_blur(f_small * weight, s)
    den = gaussian_blur(weight, s)
    plain = gaussian_blur(f_small, s)
    k = 0.02
    bg = (num + k * plain) / (den + k)
    return resize(bg, (h, w), antialias=False)


def composite(frame: jax.Array, alpha: jax.Array, options: CompositeOptions,
              background: Optional[jax.Array] = None) -> jax.Array:
    """Blend ``frame`` (H, W, 3) uint8 over a new background using ``alpha`` (H, W); returns (H, W, 3) uint8.

    ``background``: (H, W, 3) uint8 or float for modes 'image' / 'video' (already at frame size).
    """
    f = to_float(frame)
    a = alpha.astype(jnp.float32)
    if options.mode == "mask":
        return to_uint8(jnp.repeat(a[..., None], 3, axis=-1))
    if options.mode == "blur":
        bg = blurred_background(f, a, options.blur_sigma)
    elif options.mode in ("image", "video"):
        if background is None:
            raise ValueError(f"mode {options.mode!r} needs a background array")
        bg = to_float(background)
        if bg.shape[:2] != f.shape[:2]:
            bg = resize(bg, f.shape[:2])
    else:
        rgb = GREEN if options.mode == "green" else options.color
        bg = jnp.broadcast_to(jnp.asarray(rgb, jnp.float32) / 255.0, f.shape)
    a3 = a[..., None]
    return to_uint8(a3 * f + (1.0 - a3) * bg)


def _render(frame, alpha, previous, background, strength, alpha_options, composite_options):
    a = smooth_alpha(alpha, previous, strength)
    out = composite(frame, refine_alpha(a, alpha_options), composite_options, background)
    return out, a


# (frame, alpha, previous alpha, background or None, smoothing strength) -> (output uint8, smoothed alpha).
# The smoothed alpha (before threshold/expand/feather) is the next call's ``previous``.
render = jax.jit(_render, static_argnums=(5, 6))
