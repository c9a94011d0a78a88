"""Video sources: ordered frame/mask sequences and clip sampling by index arithmetic.

Layout (DAVIS-style): ``root/<seq>/frames/*.jpg`` + ``root/<seq>/masks/*.png`` (matching stems, sorted by name).

A clip is T frames ``start, start + stride, ...`` of one sequence. Training clips: every valid start of every
sequence, counted with a cumulative sum so clip ``i`` is found by ``bisect`` (index arithmetic, no list of
clips). Evaluation clips (``cover=True``): non-overlapping starts 0, T*stride, ... plus one final clip that ends
on the last frame, so every frame is evaluated at least once.
"""
from __future__ import annotations

import bisect
import collections
import dataclasses
import os

import numpy as np

from seg_jax.data import io


@dataclasses.dataclass(frozen=True)
class Sequence:
    """One video: ordered frame and mask paths."""
    name: str
    frames: tuple[str, ...]
    masks: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.frames)


def images_by_stem(folder: str) -> dict[str, str]:
    """stem -> path of every image file in ``folder`` that is not empty or truncated, sorted by stem."""
    out = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.lower().endswith(io.IMAGE_EXTENSIONS) and io.check_file(path) is None:
            out[os.path.splitext(name)[0]] = path
    return out


def list_davis(root: str, names: list[str] | None = None) -> list[Sequence]:
    """Sequences of a DAVIS-style folder (all, or those in ``names``), frames without a mask dropped."""
    if not os.path.isdir(root):
        raise io.BadInputError(f"{root}: no such folder; it must hold <seq>/frames + <seq>/masks")
    seqs = []
    for seq in sorted(os.listdir(root)) if names is None else names:
        fdir, mdir = os.path.join(root, seq, "frames"), os.path.join(root, seq, "masks")
        if not (os.path.isdir(fdir) and os.path.isdir(mdir)):
            if names is not None:
                raise io.BadInputError(f"{os.path.join(root, seq)}: missing frames/ or masks/ folder")
            continue
        frames, masks = images_by_stem(fdir), images_by_stem(mdir)
        stems = sorted(frames.keys() & masks.keys())
        if stems:
            seqs.append(Sequence(seq, tuple(frames[s] for s in stems), tuple(masks[s] for s in stems)))
    if not seqs:
        raise io.BadInputError(f"{root}: no <seq>/frames + <seq>/masks sequences found")
    return seqs


def clip_starts(length: int, clip_length: int, stride: int = 1, cover: bool = False) -> list[int]:
    """Start frames of the clips of one sequence (see module docstring)."""
    span = (clip_length - 1) * stride + 1
    if length < span:
        return []
    if not cover:
        return list(range(length - span + 1))
    starts = list(range(0, length - span + 1, clip_length * stride))
    if starts[-1] + span < length:
        starts.append(length - span)
    return starts


class ClipIndex:
    """Clip index arithmetic over videos of ``lengths`` frames: ``len`` is the number of clips, ``locate(i)`` ->
    (video index, start frame), found from the cumulative count of starts per video (bisect)."""

    def __init__(self, lengths, clip_length: int, stride: int = 1, cover: bool = False):
        self.starts = [clip_starts(int(n), int(clip_length), int(stride), cover) for n in lengths]
        self.offsets = list(np.cumsum([0] + [len(s) for s in self.starts]).tolist())

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = bisect.bisect_right(self.offsets, index) - 1
        return k, self.starts[k][index - self.offsets[k]]


class ClipSource:
    """Random-access clips of T frames.

    ``source[i]`` -> {'image': uint8 (T, H, W, 3), 'mask': uint8 (T, H, W, 1)} at the video's resolution.
    With ``cover=False`` clip ``i`` is found from the cumulative count of starts per sequence (bisect);
    with ``cover=True`` the explicit (few) evaluation starts are used.
    """

    def __init__(self, sequences: list[Sequence], clip_length: int, stride: int = 1, cover: bool = False):
        self.sequences, self.clip_length = list(sequences), int(clip_length)
        self.stride, self.cover = int(stride), cover
        self._index = ClipIndex([len(s) for s in self.sequences], self.clip_length, self.stride, cover)
        self.stats: collections.Counter = collections.Counter()   # clips skipped as undecodable, per process
        if len(self._index) == 0:
            raise io.BadInputError(f"no sequence has {self.clip_length} frames (stride {self.stride}); "
                                   "lower data.clip_length or data.clip_stride")

    def __len__(self) -> int:
        return len(self._index)

    def locate(self, index: int) -> tuple[int, int]:
        """Clip index -> (sequence index, start frame)."""
        return self._index.locate(index)

    def __getitem__(self, index: int) -> dict:
        """Clip ``index``; a clip with a frame that does not decode is skipped (counted, warned once) for the next."""
        n = len(self)
        for step in range(n):
            k, start = self.locate((index + step) % n)
            seq = self.sequences[k]
            idx = range(start, start + self.clip_length * self.stride, self.stride)
            try:
                pairs = [io.read_pair(seq.frames[t], seq.masks[t]) for t in idx]
            except io.BadInputError as e:
                io.skip_unreadable(seq.name, e, self.stats)
                continue
            return {"image": np.stack([p["image"] for p in pairs]), "mask": np.stack([p["mask"] for p in pairs])}
        raise io.BadInputError(f"no clip of {[s.name for s in self.sequences]} decodes; check the frames")

    def __repr__(self) -> str:
        return f"ClipSource({[s.name for s in self.sequences]}, T={self.clip_length}, n={len(self)})"


class FrameSource:
    """Every frame of some sequences as still pairs: {'image': (H, W, 3), 'mask': (H, W, 1)}."""

    def __init__(self, sequences: list[Sequence]):
        self.items = [(f, m) for s in sequences for f, m in zip(s.frames, s.masks)]
        self.stats: collections.Counter = collections.Counter()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        """Frame ``index``; one that does not decode is skipped (counted, warned once) for the next."""
        n = len(self.items)
        for k in range(n):
            image_path, mask_path = self.items[(index + k) % n]
            try:
                return self._read(image_path, mask_path)
            except io.BadInputError as e:
                io.skip_unreadable(image_path, e, self.stats)
        raise io.BadInputError(f"none of {n} video frames decodes; check the frames")

    def _read(self, image_path: str, mask_path: str) -> dict:
        return io.read_pair(image_path, mask_path)

    def __repr__(self) -> str:
        return f"FrameSource(n={len(self)})"
