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
    """
    strength: float = 0.0
    motion: float = 0.05
    radius: int = 2

    def __post_init__(self):
        if not 0.0 <= float(self.strength) < 1.0:
            raise ValueError(f"stabilise strength must be in [0, 1), got {self.strength!r}")
        if not float(self.motion) > 0.0:
            raise ValueError(f"stabilise motion threshold must be > 0, got {self.motion!r}")
        if int(self.radius) < 0:
            raise ValueError(f"stabilise radius must be >= 0, got {self.radius!r}")

    @property
    def enabled(self) -> bool:
        return float(self.strength) > 0.0


def initial_hold_state(input_size: Sequence[int]) -> HoldState:
    """A fresh state for frames of inference size (h, w): the first frame passes through."""
    h, w = int(input_size[0]), int(input_size[1])
    return (jnp.zeros((h, w), jnp.float32), jnp.zeros((h, w, 3), jnp.float32), jnp.zeros((), jnp.float32))


def stabilise(prob: jax.Array, frame: jax.Array, state: HoldState, settings: Stabilise) -> tuple[HoldState, jax.Array]:
    """(probabilities (h, w), frame (h, w, 3) in [0, 1], state) -> (new state, stabilised alpha (h, w))."""
    previous_alpha, previous_frame, started = state
    frame = frame.astype(jnp.float32)
    change = box_mean(jnp.mean(jnp.abs(frame - previous_frame), axis=-1), int(settings.radius))
    still = jnp.clip(1.0 - change / float(settings.motion), 0.0, 1.0)
    weight = float(settings.strength) * still * started
    alpha = weight * previous_alpha + (1.0 - weight) * prob.astype(jnp.float32)
    return (alpha, frame, jnp.ones((), jnp.float32)), alpha
