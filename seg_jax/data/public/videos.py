"""Clips and frames of a set of videos by index arithmetic, for the public video datasets.

A ``videos`` object has ``names`` (list), ``lengths`` (frames per video) and ``frames(k, indices)`` -> {'image':
uint8 (T, H, W, 3), 'mask': uint8 (T, H, W, 1)[, 'ignore': (T, H, W, 1)]} decoding only those frames. Clip ``i`` is
found from the cumulative count of clip starts per video (``bisect``), as in :mod:`seg_jax.data.clips`.
"""
from __future__ import annotations

import bisect

import numpy as np

from seg_jax.data import clips


class VideoClips:
    """Random-access clips of T frames; every start for training, covering starts for evaluation (``cover``)."""

    def __init__(self, videos, clip_length: int, stride: int = 1, cover: bool = False):
        self.videos, self.clip_length, self.stride = videos, int(clip_length), int(stride)
        self.has_ignore = bool(getattr(videos, "has_ignore", False))
        self._index = clips.ClipIndex(videos.lengths, self.clip_length, self.stride, cover)

    def __len__(self) -> int:
        return len(self._index)

    def locate(self, index: int) -> tuple[int, int]:
        """Clip index -> (video index, start frame)."""
        return self._index.locate(index)

    def __getitem__(self, index: int) -> dict:
        k, start = self.locate(index)
        return self.videos.frames(k, range(start, start + self.clip_length * self.stride, self.stride))

    def __repr__(self) -> str:
        name = type(self.videos).__name__
        return f"{name}Clips(videos={len(self.videos.names)}, T={self.clip_length}, n={len(self)})"


class VideoFrames:
    """Every frame of the videos as a still: {'image': (H, W, 3), 'mask': (H, W, 1)[, 'ignore']}."""

    def __init__(self, videos):
        self.videos = videos
        self.has_ignore = bool(getattr(videos, "has_ignore", False))
        self._offsets = list(np.cumsum([0] + list(videos.lengths)).tolist())

    def __len__(self) -> int:
        return self._offsets[-1]

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = bisect.bisect_right(self._offsets, index) - 1
        return {key: v[0] for key, v in self.videos.frames(k, [index - self._offsets[k]]).items()}

    def __repr__(self) -> str:
        return f"{type(self.videos).__name__}Frames(videos={len(self.videos.names)}, n={len(self)})"
