"""Pseudo-video: T-frame clips made from one still image by smooth random motion.

- :class:`PseudoVideoFromPairs` moves a virtual camera over a real (image, mask) pair (pan, small zoom and
  rotation), so image and mask move together;
- :class:`~seg_jax.data.composite.CompositeClipSource` (in ``composite.py``) moves the foreground and the
  background independently, which is closer to a person moving in front of a camera.

Paths are smooth: each parameter follows ``p(s) = a * s + b * s**2`` with ``s = t / (T - 1)``, drawn once per
clip from (seed, index).
"""
from __future__ import annotations

import cv2
import numpy as np

from seg_jax.data import augment


def smooth_path(rng: np.random.Generator, length: int, amplitude: float, start: float = 0.0) -> np.ndarray:
    """(T,) float32 values ``start + a*s + b*s^2`` with |a|, |b| <= amplitude, s in [0, 1]."""
    s = np.linspace(0.0, 1.0, length, dtype=np.float32) if length > 1 else np.zeros(1, np.float32)
    a, b = rng.uniform(-amplitude, amplitude, 2)
    return (start + a * s + b * s * s).astype(np.float32)


def window_matrix(src_hw: tuple[int, int], out_hw: tuple[int, int], centre: tuple[float, float],
                  zoom: float, angle_deg: float) -> np.ndarray:
    """2x3 affine mapping OUTPUT pixel coordinates to SOURCE coordinates (use with WARP_INVERSE_MAP).

    The window has the aspect ratio of ``out_hw``, is the largest such window in the source divided by
    ``zoom`` (>= 1 stays inside when centred), is centred on ``centre`` = (cx, cy) in source pixels and rotated
    by ``angle_deg``.
    """
    sh, sw = src_hw
    oh, ow = out_hw
    scale = min(sh / oh, sw / ow) / zoom            # source pixels per output pixel
    th = np.deg2rad(angle_deg)
    c, s = np.cos(th) * scale, np.sin(th) * scale
    ox, oy = (ow - 1) / 2, (oh - 1) / 2
    return np.array([[c, -s, centre[0] - c * ox + s * oy],
                     [s, c, centre[1] - s * ox - c * oy]], np.float32)


def warp(arr: np.ndarray, m: np.ndarray, out_hw: tuple[int, int], border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """Warp (H, W, C) uint8 with an output->source matrix to (oh, ow, C), bilinear."""
    out = cv2.warpAffine(np.ascontiguousarray(arr), m, (out_hw[1], out_hw[0]),
                         flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=border)
    return out.reshape(out_hw[0], out_hw[1], arr.shape[2])


def camera_clip(ex: dict, clip_length: int, out_hw: tuple[int, int], rng: np.random.Generator,
                max_shift: float = 0.06, max_zoom: float = 0.08, max_angle: float = 4.0) -> dict:
    """A still pair -> {'image': (T, oh, ow, 3), 'mask': (T, oh, ow, 1)} by a smooth camera path (an ``ignore``
    map (oh, ow, 1), where the pair has one, moves with the mask).

    Shifts are fractions of the source's shorter side; the base zoom (1 + max_shift * 2.5) keeps the window
    inside the image for most paths (borders reflect otherwise, identically in image and mask).
    """
    h, w = ex["image"].shape[:2]
    short = min(h, w)
    base_zoom = 1.0 + 2.5 * max_shift
    cx = smooth_path(rng, clip_length, max_shift * short, (w - 1) / 2)
    cy = smooth_path(rng, clip_length, max_shift * short, (h - 1) / 2)
    zoom = smooth_path(rng, clip_length, max_zoom, base_zoom)
    angle = smooth_path(rng, clip_length, max_angle)
    keys = [k for k in ("image",) + augment.SPATIAL_KEYS if k in ex]
    frames: dict[str, list] = {k: [] for k in keys}
    for t in range(clip_length):
        m = window_matrix((h, w), out_hw, (float(cx[t]), float(cy[t])), float(zoom[t]), float(angle[t]))
        for k in keys:
            frames[k].append(warp(ex[k], m, out_hw))
    return {k: np.stack(v) for k, v in frames.items()}


class PseudoVideoFromPairs:
    """Clips from a still-pair source by camera motion; clip ``i`` uses pair ``i`` and RNG (seed, i).

    ``source[i]`` -> {'image': uint8 (T, H, W, 3), 'mask': uint8 (T, H, W, 1)} at ``hw``.
    """

    def __init__(self, source, clip_length: int, hw: tuple[int, int], seed: int = 0):
        self.source, self.clip_length, self.hw, self.seed = source, int(clip_length), tuple(hw), int(seed)
        self.has_ignore = augment.carries_ignore(source)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        rng = augment.example_rng(self.seed, index, 0xC11)
        return camera_clip(self.source[index], self.clip_length, self.hw, rng)

    def __repr__(self) -> str:
        return f"PseudoVideoFromPairs({self.source!r}, T={self.clip_length})"
