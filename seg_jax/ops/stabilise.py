"""Motion-gated temporal stabilisation of a streamed alpha: hold the previous alpha where the image is still.

A per-frame network's alpha wobbles from frame to frame where the scene does not move (sensor noise, JPEG
blocking, a flat wall it is unsure about). Where the picture itself is unchanged the truth is unchanged too, so
the previous alpha is as good an answer as the new one, and averaging the two removes the wobble. Where the
picture changes (the person moves, the camera pans, another image arrives) the new alpha is taken as it is, so a
moving edge does not lag. Per pixel, at the inference resolution (before the edge-aware upsample)::

    change = box_mean(mean_over_rgb(|frame_t - frame_{t-1}|), radius)        # 0 .. 1
    still  = clip(1 - change / motion, 0, 1)                                # 1 where the image did not move
    w      = strength * still                                               # weight of the previous alpha
    alpha_t = w * alpha_{t-1} + (1 - w) * prob_t                            # an exponential average where still

With ``track`` on, a camera that pans is followed first: the whole-frame shift between the previous and the
current frame (phase correlation of their luma, whole inference pixels, at most ``max_shift`` of each side) moves
the previous alpha and frame before the comparison, so a background that only slid across the picture counts
as still and keeps its steadied alpha; pixels that slid in from outside the previous frame take the new alpha.

The state is ``(previous alpha (h, w), previous frame (h, w, 3), started ())``; a fresh state (``started`` 0)
passes the first frame through unchanged, so a single image is never altered.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp

from seg_jax.ops.filters import box_mean

HoldState = tuple  # (previous alpha (h, w) f32, previous frame (h, w, 3) f32, started () f32)


@dataclasses.dataclass(frozen=True)
class Stabilise:
    """Settings of :func:`stabilise`.

    Attributes:
      strength: weight of the previous alpha where the image is perfectly still, in [0, 1); 0 turns the
        stabiliser off (the stream's state then carries nothing for it).
      motion: mean absolute colour change (RGB in [0, 1], averaged over a window) at and above which the
        previous alpha gets no weight.
      radius: window radius of the change measure, in inference pixels (averages out sensor noise).
      track: follow a whole-frame camera shift before comparing (see the module docstring).
      max_shift: the largest shift ``track`` looks for, as a fraction of each side.
    """
    strength: float = 0.0
    motion: float = 0.05
    radius: int = 2
    track: bool = False
    max_shift: float = 0.125

    def __post_init__(self):
        if not 0.0 <= float(self.strength) < 1.0:
            raise ValueError(f"stabilise strength must be in [0, 1), got {self.strength!r}")
        if not float(self.motion) > 0.0:
            raise ValueError(f"stabilise motion threshold must be > 0, got {self.motion!r}")
        if int(self.radius) < 0:
            raise ValueError(f"stabilise radius must be >= 0, got {self.radius!r}")
        if not 0.0 < float(self.max_shift) <= 0.5:
            raise ValueError(f"stabilise max_shift must be in (0, 0.5] (a fraction of each side), got "
                             f"{self.max_shift!r}")

    @property
    def enabled(self) -> bool:
        return float(self.strength) > 0.0


def parse_stabilise(text: str) -> Stabilise:
    """'off' | 'STRENGTH,MOTION[,RADIUS[,track]]' (e.g. '0.97,0.3' or '0.9,0.2,2,track') -> :class:`Stabilise`.

    The command-line form of the settings, for tools that score a stream with a hold other than the default.
    Raises ValueError naming the expected form.
    """
    text = text.strip().lower()
    if text in ("off", "0", "none"):
        return Stabilise()
    parts = [p.strip() for p in text.split(",") if p.strip()]
    track = bool(parts) and parts[-1] == "track"
    if track:
        parts = parts[:-1]
    form = "expected 'off' or STRENGTH,MOTION[,RADIUS[,track]], e.g. 0.97,0.3"
    if len(parts) not in (2, 3):
        raise ValueError(f"stabilise settings {text!r}: {form}")
    try:
        strength, motion = float(parts[0]), float(parts[1])
        radius = int(parts[2]) if len(parts) == 3 else Stabilise.radius
    except ValueError:
        raise ValueError(f"stabilise settings {text!r}: {form}") from None
    return Stabilise(strength=strength, motion=motion, radius=radius, track=track)


def initial_hold_state(input_size: Sequence[int]) -> HoldState:
    """A fresh state for frames of inference size (h, w): the first frame passes through."""
    h, w = int(input_size[0]), int(input_size[1])
    return (jnp.zeros((h, w), jnp.float32), jnp.zeros((h, w, 3), jnp.float32), jnp.zeros((), jnp.float32))


def estimate_shift(previous: jax.Array, current: jax.Array, max_shift: float) -> jax.Array:
    """Whole-pixel (dy, dx) int32 such that ``roll(previous, (dy, dx))`` best matches ``current``.

    previous, current: (h, w) luma. Phase correlation: the normalised cross-power spectrum of the two
    (mean-removed, Hann-windowed) images is a delta at the shift; shifts beyond ``max_shift`` of a side are
    not considered, (0, 0) wins ties.
    """
    h, w = current.shape
    window = jnp.outer(jnp.hanning(h), jnp.hanning(w)).astype(jnp.float32)

    def spectrum(x):
        return jnp.fft.rfft2((x - jnp.mean(x)) * window)

    cross = spectrum(current) * jnp.conj(spectrum(previous))
    surface = jnp.fft.irfft2(cross / jnp.maximum(jnp.abs(cross), 1e-9), s=(h, w))
    dy = jnp.fft.fftfreq(h, 1.0 / h)[:, None]   # signed shift of each correlation cell
    dx = jnp.fft.fftfreq(w, 1.0 / w)[None, :]
    allowed = (jnp.abs(dy) <= max_shift * h) & (jnp.abs(dx) <= max_shift * w)
    surface = jnp.where(allowed, surface, -jnp.inf)
    best = jnp.argmax(surface)
    return jnp.stack([dy[best // w, 0], dx[0, best % w]]).astype(jnp.int32)


def shift_image(x: jax.Array, shift: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(h, w, ...) moved by (dy, dx) whole pixels -> (moved, valid (h, w) float: 0 where it slid in from outside)."""
    h, w = x.shape[:2]
    moved = jnp.roll(x, (shift[0], shift[1]), axis=(0, 1))
    rows, cols = jnp.arange(h)[:, None] - shift[0], jnp.arange(w)[None, :] - shift[1]
    valid = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).astype(jnp.float32)
    return moved, valid


def stabilise(prob: jax.Array, frame: jax.Array, state: HoldState, settings: Stabilise) -> tuple[HoldState, jax.Array]:
    """(probabilities (h, w), frame (h, w, 3) in [0, 1], state) -> (new state, stabilised alpha (h, w))."""
    previous_alpha, previous_frame, started = state
    frame = frame.astype(jnp.float32)
    valid = jnp.ones(frame.shape[:2], jnp.float32)
    if settings.track:
        shift = estimate_shift(jnp.mean(previous_frame, axis=-1), jnp.mean(frame, axis=-1), float(settings.max_shift))
        previous_alpha, _ = shift_image(previous_alpha, shift)
        previous_frame, valid = shift_image(previous_frame, shift)
    change = box_mean(jnp.mean(jnp.abs(frame - previous_frame), axis=-1), int(settings.radius))
    still = jnp.clip(1.0 - change / float(settings.motion), 0.0, 1.0) * valid
    weight = float(settings.strength) * still * started
    alpha = weight * previous_alpha + (1.0 - weight) * prob.astype(jnp.float32)
    return (alpha, frame, jnp.ones((), jnp.float32)), alpha
