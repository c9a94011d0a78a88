"""Random-access source combinators: several sources as one, and still images as clips."""
from __future__ import annotations

import bisect

import numpy as np

from seg_jax.data.augment import SPATIAL_KEYS, carries_ignore


class ConcatSource:
    """Random access over several sources in order. ``parts`` lists (name, source)."""

    def __init__(self, parts: list[tuple[str, object]]):
        self.parts = [(n, s) for n, s in parts if len(s) > 0]
        self._starts = list(np.cumsum([0] + [len(s) for _, s in self.parts]))
        self.has_ignore = any(carries_ignore(s) for _, s in self.parts)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = bisect.bisect_right(self._starts, index) - 1
        return self.parts[k][1][index - int(self._starts[k])]

    def __repr__(self) -> str:
        return f"ConcatSource({[(n, len(s)) for n, s in self.parts]})"


class RepeatFrames:
    """A still-image source seen as clips of T identical frames: {'image': (T, H, W, 3), 'mask': (T, H, W, 1)}
    (and 'ignore' (T, H, W, 1) where the source has it)."""

    def __init__(self, source, clip_length: int):
        self.source, self.clip_length = source, int(clip_length)
        self.has_ignore = carries_ignore(source)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        ex = self.source[index]
        return {k: np.repeat(ex[k][None], self.clip_length, axis=0) for k in ("image",) + SPATIAL_KEYS if k in ex}

    def __repr__(self) -> str:
        return f"RepeatFrames({self.source!r}, T={self.clip_length})"
