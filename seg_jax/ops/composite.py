"""Alpha refinement (temporal smoothing, threshold, expand/shrink, feather) and background compositing.

Everything is on device and jit-friendly. Options that change array shapes or control flow (mode, radii) live in
the frozen, hashable :class:`AlphaOptions` / :class:`CompositeOptions` so they can be static jit arguments;
per-frame values (previous alpha, background image, smoothing strength) are arrays.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import gaussian_blur, max_filter, min_filter
from seg_jax.ops.foreground import foreground_from_fields, smooth_fields
from seg_jax.ops.light_wrap import apply_light_wrap, wrap_fields, wrap_sigma
from seg_jax.ops.resize import downscale_mean, resize, to_float, to_uint8

MODES = ("blur", "image", "video", "color", "mask", "green")
REPLACE_MODES = ("image", "video", "color", "green")  # a new background replaces the room
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
      clean_edges: in the replace modes, blend the estimated foreground colour (:mod:`seg_jax.ops.foreground`)
        instead of the frame, so soft edges do not carry the old room's colour over (False: blend the frame).
      light_wrap: in the replace modes, how much of the new background's light spills over the person's edge,
        in [0, 1] (:mod:`seg_jax.ops.light_wrap`; 0 = off).
    """
    mode: str = "blur"
    blur_sigma: float = 12.0
    color: tuple[int, int, int] = (0, 0, 0)
    clean_edges: bool = True
    light_wrap: float = 0.0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if not 0.0 <= self.light_wrap <= 1.0:
            raise ValueError(f"light_wrap must be in [0, 1], got {self.light_wrap}")


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


def _blur_factor(sigma: float) -> int:
    return 4 if sigma >= 4 else 1


def background_rows(frame: jax.Array, alpha: jax.Array, sigma: float) -> jax.Array:
    """The blurred background at 1/f of the frame's rows and its full width: (ceil(H / f), W, 3) float, with
    f = 4 for ``sigma`` >= 4 (else 1).

    ``frame`` (H, W, 3) uint8 or float [0, 1], ``alpha`` (H, W). Normalised convolution at 1/f resolution:
    blur(frame * (1 - alpha)) / blur(1 - alpha), falling back to the plain blur deep inside the person (the
    person's colours do not bleed into the background). :func:`upsample_background_rows` finishes the upsample.
    """
    factor = _blur_factor(sigma)
    s = sigma / factor
    f_small = downscale_mean(to_float(frame), factor)
    weight = downscale_mean(1.0 - alpha.astype(jnp.float32), factor)[..., None]
    num = gaussian_blur(f_small * weight, s)
    den = gaussian_blur(weight, s)
    plain = gaussian_blur(f_small, s)
    k = 0.02
    bg = (num + k * plain) / (den + k)
    # block i covers pixels [factor * i, factor * (i + 1)): upsampling to the padded size keeps the grid
    return resize(bg, (bg.shape[0], bg.shape[1] * factor), antialias=False)[:, :frame.shape[1]]


def upsample_background_rows(rows: jax.Array, height: int, sigma: float) -> jax.Array:
    """:func:`background_rows` output (for the same ``sigma``) -> the blurred background (height, W, 3) float."""
    factor = _blur_factor(sigma)
    return resize(rows, (rows.shape[0] * factor, rows.shape[1]), antialias=False)[:height]


def blurred_background(frame: jax.Array, alpha: jax.Array, sigma: float) -> jax.Array:
    """Blur of the background only, (H, W, 3) float: see :func:`background_rows`."""
    return upsample_background_rows(background_rows(frame, alpha, sigma), frame.shape[0], sigma)


def blend(frame: jax.Array, alpha: jax.Array, background: jax.Array) -> jax.Array:
    """``alpha * frame + (1 - alpha) * background`` as uint8; frame/background uint8 or float [0, 1]."""
    a3 = alpha.astype(jnp.float32)[..., None]
    return to_uint8(a3 * to_float(frame) + (1.0 - a3) * to_float(background))


def new_background(shape: tuple[int, ...], options: CompositeOptions,
                   background: Optional[jax.Array] = None) -> jax.Array:
    """The replacement background (H, W, 3) float [0, 1] of a replace mode, for a frame of ``shape``.

    ``background``: (h, w, 3) uint8 or float for modes 'image' / 'video' (resized when not at frame size).
    """
    if options.mode in ("image", "video"):
        if background is None:
            raise ValueError(f"mode {options.mode!r} needs a background array")
        bg = to_float(background)
        return bg if bg.shape[:2] == tuple(shape[:2]) else resize(bg, shape[:2])
    rgb = GREEN if options.mode == "green" else options.color
    return jnp.broadcast_to(jnp.asarray(rgb, jnp.float32) / 255.0, tuple(shape[:2]) + (3,))


def replace_fields(frame: jax.Array, alpha: jax.Array, options: CompositeOptions,
                   background: Optional[jax.Array] = None) -> tuple:
    """The low-resolution fields a replace mode needs: foreground estimate (None without ``clean_edges``) and
    light wrap (None when off). :func:`replace_blend` finishes at full resolution."""
    fg = smooth_fields(frame, alpha) if options.clean_edges else None
    wrap = None
    if options.light_wrap > 0:
        wrap = wrap_fields(alpha, new_background(frame.shape, options, background), wrap_sigma(frame.shape[:2]))
    return fg, wrap


def replace_blend(frame: jax.Array, alpha: jax.Array, fields: tuple, options: CompositeOptions,
                  background: Optional[jax.Array] = None) -> jax.Array:
    """``alpha * F + (1 - alpha) * B_new`` (F the estimated foreground, or the frame without ``clean_edges``),
    then the light wrap; (H, W, 3) uint8. ``fields``: :func:`replace_fields` of the same arguments."""
    fg_fields, wrap = fields
    fg = to_float(frame) if fg_fields is None else foreground_from_fields(frame, alpha, fg_fields)
    a3 = alpha.astype(jnp.float32)[..., None]
    out = a3 * fg + (1.0 - a3) * new_background(frame.shape, options, background)
    if wrap is not None:
        out = apply_light_wrap(out, alpha, wrap, options.light_wrap)
    return to_uint8(out)


def composite(frame: jax.Array, alpha: jax.Array, options: CompositeOptions,
              background: Optional[jax.Array] = None) -> jax.Array:
    """Blend ``frame`` (H, W, 3) uint8 over a new background using ``alpha`` (H, W); returns (H, W, 3) uint8.

    ``background``: (H, W, 3) uint8 or float for modes 'image' / 'video' (already at frame size).
    The replace modes blend the estimated foreground colour (``options.clean_edges``) and add the light wrap.
    """
    f = to_float(frame)
    a = alpha.astype(jnp.float32)
    if options.mode == "mask":
        return to_uint8(jnp.repeat(a[..., None], 3, axis=-1))
    if options.mode == "blur":
        return blend(f, a, blurred_background(f, a, options.blur_sigma))
    return replace_blend(f, a, replace_fields(f, a, options, background), options, background)


@functools.partial(jax.jit, static_argnums=(3,))
def _alpha_stage(alpha, previous, strength, alpha_options):
    a = alpha if previous is None else smooth_alpha(alpha, previous, strength)
    return refine_alpha(a, alpha_options), a


_background_rows = jax.jit(background_rows, static_argnums=(2,))


@functools.partial(jax.jit, static_argnums=(3,))
def _blend_rows(frame, alpha, rows, sigma):
    return blend(frame, alpha, upsample_background_rows(rows, frame.shape[0], sigma))


_replace_fields = jax.jit(replace_fields, static_argnums=(2,))
_replace_blend = jax.jit(replace_blend, static_argnums=(3,))


@functools.partial(jax.jit, static_argnums=(5, 6))
def _render_one_jit(frame, alpha, previous, background, strength, alpha_options, composite_options):
    a, smoothed = _alpha_stage(alpha, previous, strength, alpha_options)
    return composite(frame, a, composite_options, background), smoothed


def render(frame: jax.Array, alpha: jax.Array, previous: Optional[jax.Array], background: Optional[jax.Array],
           strength: jax.Array | float, alpha_options: AlphaOptions,
           composite_options: CompositeOptions) -> tuple[jax.Array, jax.Array]:
    """(frame, alpha, previous alpha or None, background or None, smoothing strength, options) ->
    (output (H, W, 3) uint8, smoothed alpha). The smoothed alpha (before threshold/expand/feather) is the next
    call's ``previous``.

    Mode 'blur' runs as separately jitted stages: in one XLA computation on CPU the background blur was fused
    into the per-pixel blend and recomputed for every output pixel (measured: results/MEASUREMENTS.md,
    'composite: staged blur'). The replace modes with a foreground estimate or light wrap are staged the same
    way (low-resolution fields, then the full-resolution blend). The other modes are one jit.
    """
    staged_replace = composite_options.mode in REPLACE_MODES and (
        composite_options.clean_edges or composite_options.light_wrap > 0)
    if composite_options.mode != "blur" and not staged_replace:
        return _render_one_jit(frame, alpha, previous, background, strength, alpha_options, composite_options)
    frame = jnp.asarray(frame)  # one host -> device copy for both stages that read it
    a, smoothed = _alpha_stage(alpha, previous, strength, alpha_options)
    if staged_replace:
        fields = _replace_fields(frame, a, composite_options, background)
        return _replace_blend(frame, a, fields, composite_options, background), smoothed
    sigma = float(composite_options.blur_sigma)
    return _blend_rows(frame, a, _background_rows(frame, a, sigma), sigma), smoothed
