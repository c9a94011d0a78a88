"""Synthetic person-like data made in code, for tests and ``:tiny`` configs (no files needed).

Each example is a noisy, smoothly shaded background with a few distractor shapes (not in the mask) and one
"person": a head ellipse on top of a rounded body, textured with its own colour. Clips move the person and
pan the background along straight lines. Everything is a pure function of (seed, index).
"""
from __future__ import annotations

import cv2
import numpy as np


def _smooth_noise(rng: np.random.Generator, hw: tuple[int, int], cells: int, channels: int) -> np.ndarray:
    """Low-frequency noise in [0, 1], (H, W, channels) float32."""
    small = rng.random((cells, cells, channels), dtype=np.float32)
    return cv2.resize(small, (hw[1], hw[0]), interpolation=cv2.INTER_CUBIC).reshape(hw[0], hw[1], channels)


def _scene(rng: np.random.Generator, hw: tuple[int, int]) -> dict:
    """Random parameters of one scene (background, distractors, person) in relative units."""
    return {
        "bg_colour": rng.uniform(0, 255, 3), "bg_cells": int(rng.integers(2, 6)),
        "bg_noise_seed": int(rng.integers(2**31)),
        "distractors": [(rng.uniform(0, 1, 2), rng.uniform(0.05, 0.2), rng.uniform(0, 255, 3),
                         int(rng.integers(0, 2))) for _ in range(int(rng.integers(1, 4)))],
        "centre": rng.uniform(0.3, 0.7, 2), "scale": rng.uniform(0.25, 0.5),
        "person_colour": rng.uniform(0, 255, 3), "velocity": rng.uniform(-0.04, 0.04, 2),
        "pan": rng.uniform(-3, 3, 2), "noise": rng.uniform(2, 12),
    }


def _render(scene: dict, hw: tuple[int, int], t: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = hw
    size = min(h, w)
    bg_rng = np.random.default_rng(scene["bg_noise_seed"])
    big = (h + 16 * 4, w + 16 * 4)
    shade = _smooth_noise(bg_rng, big, scene["bg_cells"], 1)
    off = np.clip(np.rint(np.array([32.0, 32.0]) + t * scene["pan"]).astype(int), 0, 64)
    shade = shade[off[0]:off[0] + h, off[1]:off[1] + w]
    image = scene["bg_colour"][None, None, :] * (0.5 + shade)
    for (pos, rad, colour, kind) in scene["distractors"]:
        c = (int(pos[1] * w), int(pos[0] * h))
        r = max(2, int(rad * size))
        if kind == 0:
            cv2.circle(image, c, r, colour.tolist(), -1)
        else:
            cv2.rectangle(image, (c[0] - r, c[1] - r), (c[0] + r, c[1] + r), colour.tolist(), -1)
    mask = np.zeros((h, w), np.float32)
    cy, cx = (scene["centre"] + t * scene["velocity"]) * np.array([h, w])
    s = scene["scale"] * size
    head = (int(cx), int(cy - 0.55 * s))
    cv2.ellipse(mask, head, (max(2, int(0.22 * s)), max(2, int(0.28 * s))), 0, 0, 360, 1.0, -1)
    body = np.array([[cx - 0.5 * s, h + s], [cx - 0.45 * s, cy], [cx - 0.15 * s, cy - 0.3 * s],
                     [cx + 0.15 * s, cy - 0.3 * s], [cx + 0.45 * s, cy], [cx + 0.5 * s, h + s]], np.int32)
    cv2.fillPoly(mask, [body], 1.0)
    alpha = cv2.GaussianBlur(mask, (0, 0), 0.8)[:, :, None]
    person = scene["person_colour"][None, None, :] * (0.6 + 0.8 * shade)
    image = image * (1 - alpha) + person * alpha
    image = image + rng.normal(0, scene["noise"], image.shape)
    image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return image, np.clip(np.rint(alpha * 255), 0, 255).astype(np.uint8)


class SyntheticSource:
    """Random-access synthetic examples.

    Attributes:
      size: number of examples.
      hw: (height, width) of every example.
      seed: base seed; example ``i`` depends only on (seed, i).
      clip_length: 0 for still images ({'image': (H, W, 3), 'mask': (H, W, 1)} uint8), T > 0 for clips
        ({'image': (T, H, W, 3), 'mask': (T, H, W, 1)}).
    """

    def __init__(self, size: int, hw: tuple[int, int], seed: int = 0, clip_length: int = 0):
        self.size, self.hw, self.seed, self.clip_length = int(size), tuple(hw), int(seed), int(clip_length)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = np.random.default_rng([self.seed, int(index), 0x5E7])
        scene = _scene(rng, self.hw)
        frames = [_render(scene, self.hw, t, rng) for t in range(max(1, self.clip_length))]
        if self.clip_length == 0:
            return {"image": frames[0][0], "mask": frames[0][1]}
        return {"image": np.stack([f[0] for f in frames]), "mask": np.stack([f[1] for f in frames])}

    def __repr__(self) -> str:
        return f"SyntheticSource(size={self.size}, hw={self.hw}, seed={self.seed}, clip_length={self.clip_length})"
