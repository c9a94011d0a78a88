"""What the live loop measures per frame and prints: capture-to-output latency and the alpha's flicker.

Latency is from the moment a frame left the source (``read()`` returned) to the moment the last sink accepted
its output, so it includes waiting in the pipeline's queues. Flicker is the mean ``|alpha_t - alpha_{t-1}|`` over
all pixels of consecutive frames of the same size (lower is steadier); a new sequence (``reset``) starts afresh.
"""
from __future__ import annotations

import collections
import threading
from typing import Optional

import numpy as np


class LatencyMeter:
    """``add(seconds)`` from any thread; ``median_ms`` / ``p95_ms`` over the run (None before a frame),
    ``recent_ms`` over the last ``window`` frames for the overlay."""

    def __init__(self, window: int = 30, skip: int = 1):
        self._all: list[float] = []
        self._recent: collections.deque = collections.deque(maxlen=window)
        self._skip = skip          # the first frames wait for the compile: not the steady state
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            if self._skip > 0:
                self._skip -= 1
                return
            self._all.append(seconds)
            self._recent.append(seconds)

    def _percentile(self, values, q) -> Optional[float]:
        with self._lock:
            v = list(values)
        return 1000.0 * float(np.percentile(v, q)) if v else None

    @property
    def median_ms(self) -> Optional[float]:
        return self._percentile(self._all, 50)

    @property
    def p95_ms(self) -> Optional[float]:
        return self._percentile(self._all, 95)

    @property
    def recent_ms(self) -> Optional[float]:
        return self._percentile(self._recent, 50)


class FlickerTracker:
    """``update(alpha)`` with each frame's (H, W) alpha in [0, 1]; ``value``: mean |Δα| over the run (sums over
    all pixel pairs, like :class:`seg_jax.evaluation.metrics_temporal.FlickerMeter`); ``recent``: over the last
    frames."""

    def __init__(self, window: int = 30):
        self._previous: Optional[np.ndarray] = None
        self.total = 0.0
        self.count = 0
        self._recent: collections.deque = collections.deque(maxlen=window)

    def reset(self) -> None:
        self._previous = None

    def update(self, alpha: np.ndarray) -> None:
        a = np.asarray(alpha, np.float32)
        if self._previous is not None and self._previous.shape == a.shape:
            diff = np.abs(a - self._previous)
            self.total += float(diff.sum(dtype=np.float64))
            self.count += diff.size
            self._recent.append(float(diff.mean()))
        self._previous = a

    @property
    def value(self) -> Optional[float]:
        return self.total / self.count if self.count else None

    @property
    def recent(self) -> Optional[float]:
        return float(np.mean(self._recent)) if self._recent else None


__all__ = ["FlickerTracker", "LatencyMeter"]
