"""The paper's augmentations (and resizing) as pure functions of (example, rng), plus Grain transforms.

Examples are dicts with ``image`` uint8 (..., H, W, 3) and ``mask`` uint8 (..., H, W, 1): a still image is
(H, W, C), a clip is (T, H, W, C); an optional ``ignore`` uint8 (..., H, W, 1) (see :data:`IGNORE_KEY`) takes every
geometric transform of the mask (crop, resize, flip, rotation) and none of the photometric ones. Every random
choice is drawn once per example, so all frames of a clip get the same flip, gray, channel order, dropout holes
and rotation.

Paper (Shahi & Li 2023, sec. 4.1): horizontal flip, RGB -> gray, channel shuffle, coarse dropout (3-10 holes
up to 32x32) and rotation up to 45 degrees. The paper gives no probabilities; ours are :data:`DEFAULT_PROBS`.
Hole sizes scale with the image: up to ``32 * min(H, W) / 256`` pixels. Dropout fills holes with 0 in the image
and leaves the mask unchanged (the person is still there behind an occluder, as in albumentations'
CoarseDropout default). Rotation uses bilinear filtering for image and mask and fills the corners with 0
(black, background).
"""
from __future__ import annotations

import cv2
import grain
import numpy as np

from seg_jax.data import io

# The optional per-pixel "leave out" map: uint8 like the mask, 255 where a pixel counts in neither the loss nor the
# metrics (>= 128 after resampling), 0 elsewhere. Sources that have one set ``has_ignore = True``; the Grain
# transforms then give every example of the pipeline one (zeros where the source has none), so batches stack.
IGNORE_KEY = "ignore"
SPATIAL_KEYS = ("mask", IGNORE_KEY)   # the keys that move with the image's pixels

DEFAULT_PROBS = {"flip": 0.5, "gray": 0.2, "channel_shuffle": 0.2, "dropout": 0.3, "rotate": 0.3}


def _frames(x: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (1, H, W, C); (T, H, W, C) unchanged."""
    return x[None] if x.ndim == 3 else x


def _like(frames: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return frames[0] if ref.ndim == 3 else frames


def example_rng(seed: int, index: int, tag: int = 0) -> np.random.Generator:
    """The Generator for example ``index`` of a pipeline seeded with ``seed`` (``tag`` separates uses)."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), int(tag)])


def resize_example(ex: dict, hw: tuple[int, int]) -> dict:
    """Resize image (area/linear) and mask (linear, keeps soft edges) of a still or clip to ``hw``."""
    out = dict(ex)
    for key in ("image",) + SPATIAL_KEYS:
        if key in ex:
            out[key] = _like(np.stack([io.resize(f, hw) for f in _frames(ex[key])]), ex[key])
    return out


def random_crop_resize(ex: dict, hw: tuple[int, int], rng: np.random.Generator,
                       scale: tuple[float, float] = (0.6, 1.0)) -> dict:
    """Crop a random window with the aspect ratio of ``hw`` covering ``scale`` of the largest such window,
    then resize to ``hw``. The same window is used for every frame of a clip."""
    img = _frames(ex["image"])
    h, w = img.shape[1:3]
    target = hw[1] / hw[0]
    ch, cw = (h, int(round(h * target))) if w / h >= target else (int(round(w / target)), w)
    s = float(np.sqrt(rng.uniform(*scale)))
    ch, cw = max(1, min(h, int(ch * s))), max(1, min(w, int(cw * s)))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    keys = [k for k in ("image",) + SPATIAL_KEYS if k in ex]
    crop = {**ex, **{k: _frames(ex[k])[:, y0:y0 + ch, x0:x0 + cw] for k in keys}}
    out = resize_example(crop, hw)
    return {**out, **{k: _like(out[k], ex[k]) for k in keys}}


def paper_augment(ex: dict, rng: np.random.Generator, probs: dict | None = None) -> dict:
    """Flip, RGB->gray, channel shuffle, coarse dropout and rotation (<= 45 deg), consistent across frames."""
    probs = DEFAULT_PROBS if probs is None else probs
    img = _frames(ex["image"]).copy()
    spatial = {k: _frames(ex[k]).copy() for k in SPATIAL_KEYS if k in ex}
    t, h, w = img.shape[:3]
    u = rng.random(5)
    if u[0] < probs["flip"]:
        img = img[:, :, ::-1]
        spatial = {k: v[:, :, ::-1] for k, v in spatial.items()}
    if u[1] < probs["gray"]:
        gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))
        img = np.repeat(np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
    if u[2] < probs["channel_shuffle"]:
        img = img[..., rng.permutation(3)]
    if u[3] < probs["dropout"]:
        img = np.ascontiguousarray(img)
        max_side = max(1, int(round(32 * min(h, w) / 256)))
        for _ in range(int(rng.integers(3, 11))):
            hh, ww = int(rng.integers(1, max_side + 1)), int(rng.integers(1, max_side + 1))
            y, x = int(rng.integers(0, h - hh + 1)), int(rng.integers(0, w - ww + 1))
            img[:, y:y + hh, x:x + ww] = 0
    if u[4] < probs["rotate"]:
        angle = float(rng.uniform(-45, 45))
        m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
        rot = lambda f: cv2.warpAffine(np.ascontiguousarray(f), m, (w, h), flags=cv2.INTER_LINEAR,
                                       borderMode=cv2.BORDER_CONSTANT, borderValue=0).reshape(f.shape)
        img = np.stack([rot(f) for f in img])
        spatial = {k: np.stack([rot(f) for f in v]) for k, v in spatial.items()}
    out = {**ex, "image": _like(np.ascontiguousarray(img), ex["image"])}
    return {**out, **{k: _like(np.ascontiguousarray(v), ex[k]) for k, v in spatial.items()}}


def with_ignore(ex: dict) -> dict:
    """``ex`` with an ``ignore`` map: its own, else zeros shaped like the mask (nothing ignored)."""
    return ex if IGNORE_KEY in ex else {**ex, IGNORE_KEY: np.zeros_like(ex["mask"])}


def carries_ignore(source) -> bool:
    """Does a source (or the source it wraps, via ``.source``) give examples an ``ignore`` map?"""
    while source is not None:
        if getattr(source, "has_ignore", False):
            return True
        source = getattr(source, "source", None)
    return False


def _keep(element: dict, ignore: bool) -> dict:
    ex = {"image": element["image"], "mask": element["mask"]}
    if ignore:
        ex[IGNORE_KEY] = with_ignore(element)[IGNORE_KEY]
    return ex


def binarize(ex: dict) -> dict:
    """Hard targets: mask >= 128 -> 255, else 0."""
    return {**ex, "mask": np.where(ex["mask"] >= 128, 255, 0).astype(np.uint8)}


class TrainTransform(grain.transforms.MapWithIndex):
    """Grain transform: random crop-resize (unless already at ``hw``), paper augmentations, hard targets.

    The RNG of element ``index`` (its position in the shuffled, repeated stream) is
    ``example_rng(seed, index, 1)``, so the pipeline is deterministic and resumable from its index alone.
    ``ignore=True``: every output has an ``ignore`` map (zeros where the element has none); False: the key is
    dropped, and the output is exactly what it was before the key existed.
    """

    def __init__(self, hw: tuple[int, int], seed: int, augment: bool = True, soft_targets: bool = True,
                 crop_scale: tuple[float, float] = (0.6, 1.0), ignore: bool = False):
        self.hw, self.seed, self.augment, self.soft = tuple(hw), int(seed), bool(augment), bool(soft_targets)
        self.crop_scale, self.ignore = tuple(crop_scale), bool(ignore)

    def map_with_index(self, index: int, element: dict) -> dict:
        rng = example_rng(self.seed, index, 1)
        ex = _keep(element, self.ignore)
        if tuple(_frames(ex["image"]).shape[1:3]) != self.hw:
            ex = (random_crop_resize(ex, self.hw, rng, self.crop_scale) if self.augment
                  else resize_example(ex, self.hw))
        if self.augment:
            ex = paper_augment(ex, rng)
        return ex if self.soft else binarize(ex)


class EvalTransform(grain.transforms.Map):
    """Grain transform for evaluation: plain resize to ``hw`` (aspect not kept), optional hard targets."""

    def __init__(self, hw: tuple[int, int], soft_targets: bool = True, ignore: bool = False):
        self.hw, self.soft, self.ignore = tuple(hw), bool(soft_targets), bool(ignore)

    def map(self, element: dict) -> dict:
        ex = resize_example(_keep(element, self.ignore), self.hw)
        return ex if self.soft else binarize(ex)
