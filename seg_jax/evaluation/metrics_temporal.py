"""Temporal stability of video mattes: flicker and dtSSD.

Flicker = mean frame-to-frame absolute change of alpha.

``flicker(alphas)`` averages |alpha_t - alpha_{t-1}| over all pixels and frame pairs. With ``masks`` (the true
masks), only pixels whose true label does not change between the two frames count, so genuine motion is not
called flicker. Values are in [0, 1] (x100 for "percent of full scale"); lower is better.

dtSSD (Erofeev et al. 2015, with the scaling of Robust Video Matting's evaluation) compares the predicted
change with the true change: per frame pair ``sqrt(mean(((a_t - a_{t-1}) - (g_t - g_{t-1}))^2)) * 100`` over
all pixels, averaged over the frame pairs of the sequence(s). Lower is better; 0 means alpha moves exactly as
the truth does. Pure numpy, so the
evaluator and training code can use it without a device; :class:`FlickerMeter` does the same incrementally.
"""
from __future__ import annotations

from typing import Iterable, Optional

import numpy as np


def _as_alpha(a) -> np.ndarray:
    """(H, W) or (H, W, 1), uint8 0..255 or float [0, 1] -> float32 (H, W) in [0, 1]."""
    a = np.asarray(a)
    a = a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32)
    return a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a


def _as_mask(m) -> np.ndarray:
    m = np.asarray(m)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    return m >= 128 if m.dtype == np.uint8 else m >= 0.5


class FlickerMeter:
    """Accumulates flicker one frame at a time: ``update(alpha, mask=None)``, then ``value``.

    Sums (absolute change, pixel count) over the whole sequence, not a mean of per-frame means.
    """

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self._prev_alpha = None
        self._prev_mask = None
        self.total = 0.0
        self.count = 0

    def update(self, alpha, mask=None) -> None:
        a = _as_alpha(alpha)
        m = None if mask is None else _as_mask(mask)
        if self._prev_alpha is not None and self._prev_alpha.shape == a.shape:
            diff = np.abs(a - self._prev_alpha)
            if m is not None and self._prev_mask is not None:
                stable = m == self._prev_mask
                self.total += float(diff[stable].sum(dtype=np.float64))
                self.count += int(stable.sum())
            else:
                self.total += float(diff.sum(dtype=np.float64))
                self.count += diff.size
        self._prev_alpha, self._prev_mask = a, m

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


class DtSSDMeter:
    """Accumulates dtSSD one frame at a time: ``update(alpha, truth)``, then ``value`` (mean over frame pairs).

    ``reset()`` starts a new sequence but keeps the running mean, so several sequences pool their pairs.
    """

    def __init__(self):
        self.total, self.count = 0.0, 0
        self.reset()

    def reset(self) -> None:
        self._prev = None

    def update(self, alpha, truth) -> None:
        a, g = _as_alpha(alpha), _as_alpha(truth)
        if a.shape != g.shape:
            raise ValueError(f"alpha {a.shape} and truth {g.shape} differ in size")
        if self._prev is not None and self._prev[0].shape == a.shape:
            pa, pg = self._prev
            err = (a - pa) - (g - pg)
            self.total += 100.0 * float(np.sqrt(np.mean(np.square(err, dtype=np.float64))))
            self.count += 1
        self._prev = (a, g)

    @property
    def value(self) -> float:
        return self.total / self.count if self.count else 0.0


def dtssd(alphas: Iterable, truths: Iterable) -> float:
    """dtSSD of one sequence of (H, W) alphas against its true alphas (float [0, 1] or uint8 0..255)."""
    meter = DtSSDMeter()
    for a, g in zip(alphas, truths, strict=True):
        meter.update(a, g)
    return meter.value


def flicker(alphas: Iterable, masks: Optional[Iterable] = None) -> float:
    """Mean |alpha_t - alpha_{t-1}| over a sequence of (H, W) alphas (float [0, 1] or uint8 0..255).

    ``masks``: optional true masks (same length); then only pixels whose true label is unchanged count.
    """
    meter = FlickerMeter()
    if masks is None:
        for a in alphas:
            meter.update(a)
    else:
        for a, m in zip(alphas, masks, strict=True):
            meter.update(a, m)
    return meter.value


__all__ = ["DtSSDMeter", "FlickerMeter", "dtssd", "flicker"]
