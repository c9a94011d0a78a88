"""The privacy fail-safe: when the mask cannot be trusted, hide the whole picture instead of trusting it.

A wrong mask leaks the room (or a person behind the user) at full sharpness. The rule below looks, frame by
frame, for the situations in which the network's answer is not worth trusting:

- ``dark``: the camera is covered or the picture is black (mean luma at or below ``dark_luma``);
- ``flat``: a featureless picture (luma spread at or below ``flat_std``: a lens covered by a finger or a lid);
- ``frozen``: the source stopped changing (mean absolute change at or below ``frozen_change``; a real camera
  always has sensor noise, so an identical frame means a stuck driver or a paused stream);
- ``person covers the frame``: the person region takes most of the picture (more than ``max_coverage``: even a
  close-up face leaves some background; a mask that does not has failed);
- ``uncertain``: a large share of the alpha (more than ``max_uncertain``) lies inside ``uncertain_band``.

Hysteresis keeps it from flapping: it engages after ``engage_after`` consecutive bad frames and releases after
``release_after`` consecutive good ones. While engaged the loop blurs the whole output (``blur``) or keeps
showing the last output of a good frame (``freeze``). Everything here is numpy on host arrays, without I/O.
The coverage and uncertainty thresholds sit above what the shipped model gives on good close-up selfies
(``python -m seg_jax.live.bench failsafe``, results/bench/failsafe-false-alarms.json).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

ACTIONS = ("blur", "freeze", "off")


@dataclasses.dataclass(frozen=True)
class FailsafeRule:
    """Thresholds of :func:`assess` and the hysteresis of :class:`Failsafe` (lumas in 0..255, shares in 0..1)."""
    dark_luma: float = 16.0
    flat_std: float = 3.0
    frozen_change: float = 0.2
    max_coverage: float = 0.92
    uncertain_band: tuple[float, float] = (0.2, 0.8)
    max_uncertain: float = 0.35
    engage_after: int = 3
    release_after: int = 10
    stride: int = 4           # the measures look at every stride-th pixel: enough for means and shares


@dataclasses.dataclass(frozen=True)
class Decision:
    """``engaged``: hide the output; ``reasons``: the latest bad frame's reasons while engaged (else this frame's,
    possibly empty); ``changed``: the state flipped on this frame; ``bad``: this frame alone looked bad."""
    engaged: bool
    reasons: tuple[str, ...]
    changed: bool
    bad: bool


def luma(frame: np.ndarray, stride: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H/stride, W/stride) float32 luma in 0..255 (BT.601 weights)."""
    f = frame[::stride, ::stride].astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def assess(frame: np.ndarray, alpha: np.ndarray, previous_luma: Optional[np.ndarray],
           rule: FailsafeRule) -> tuple[tuple[str, ...], np.ndarray]:
    """(frame (H, W, 3) uint8, alpha (H, W) in [0, 1], the previous frame's :func:`luma` or None) ->
    (reasons this frame is not trustworthy, empty when it is; this frame's luma for the next call)."""
    y = luma(frame, rule.stride)
    reasons = []
    if float(y.mean()) <= rule.dark_luma:
        reasons.append("dark frame")
    elif float(y.std()) <= rule.flat_std:
        reasons.append("featureless frame")
    if previous_luma is not None and previous_luma.shape == y.shape \
            and float(np.abs(y - previous_luma).mean()) <= rule.frozen_change:
        reasons.append("frozen source")
    a = np.asarray(alpha, np.float32)[::rule.stride, ::rule.stride]
    if float((a > 0.5).mean()) > rule.max_coverage:
        reasons.append("person covers the frame")
    low, high = rule.uncertain_band
    if float(((a > low) & (a < high)).mean()) > rule.max_uncertain:
        reasons.append("uncertain mask")
    return tuple(reasons), y


class Failsafe:
    """The rule's state over a stream: ``update(frame, alpha) -> Decision``, one call per frame, in order."""

    def __init__(self, rule: FailsafeRule = FailsafeRule()):
        if rule.engage_after < 1 or rule.release_after < 1:
            raise ValueError("engage_after and release_after must be at least 1")
        self.rule = rule
        self.engaged = False
        self.bad_run = 0
        self.good_run = 0
        self.reasons: tuple[str, ...] = ()
        self.engaged_frames = 0
        self._previous: Optional[np.ndarray] = None

    def update(self, frame: np.ndarray, alpha: np.ndarray) -> Decision:
        reasons, self._previous = assess(frame, alpha, self._previous, self.rule)
        was = self.engaged
        if reasons:
            self.bad_run, self.good_run = self.bad_run + 1, 0
            self.reasons = reasons
            if self.bad_run >= self.rule.engage_after:
                self.engaged = True
        else:
            self.bad_run, self.good_run = 0, self.good_run + 1
            if self.engaged and self.good_run >= self.rule.release_after:
                self.engaged = False
        self.engaged_frames += int(self.engaged)
        shown = self.reasons if self.engaged else reasons
        return Decision(self.engaged, shown, self.engaged != was, bool(reasons))


def privacy_blur(image: np.ndarray, factor: int = 16) -> np.ndarray:
    """(H, W, C) uint8 -> the same size, so blurred that no face or text survives (an area downscale by
    ``factor``, a small blur there, and a bilinear upscale: cheap at any resolution)."""
    import cv2
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (3, 3), 0)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(image.shape)


class FailsafeOutput:
    """Applies a decision to the loop's output: ``apply(out, decision) -> out`` for action 'blur' or 'freeze'
    (the last output of a good frame; blurred until there is one). 'off' passes everything through."""

    def __init__(self, action: str):
        if action not in ACTIONS:
            raise ValueError(f"fail-safe action must be one of {', '.join(ACTIONS)}, got {action!r}")
        self.action = action
        self._held: Optional[np.ndarray] = None

    def apply(self, out: np.ndarray, decision: Decision) -> np.ndarray:
        if self.action == "off":
            return out
        if not decision.engaged:
            if not decision.bad:
                self._held = out
            return out
        if self.action == "freeze" and self._held is not None and self._held.shape == out.shape:
            return self._held
        return privacy_blur(out)


__all__ = ["ACTIONS", "Decision", "Failsafe", "FailsafeOutput", "FailsafeRule", "assess", "luma", "privacy_blur"]
