"""Compositing: real foregrounds pasted onto real backgrounds, with exact masks.

A foreground is an (image, alpha) pair: a real image with its (soft) mask, or an RGBA cutout; it is cropped to
its alpha's bounding box. A scene (:func:`sample_scene`) draws, from one Generator: the background window
(crop, zoom, flip), the foreground's height, position (often anchored at the bottom edge like a webcam
portrait), flip and rotation, colour jitter of the foreground, optional second person, light wrap, blur and
noise. :func:`render` draws frame ``t`` of the scene; with motion paths (pseudo-video) the foreground and the
background move independently along smooth paths with small zoom and rotation.

Exactness: the output mask is the warped foreground alpha, the same alpha that blends the foreground over the
background (``out = a * fg + (1 - a) * bg`` before the photometric effects). Light wrap, blur and noise change
only the image, never the mask, so where the mask is 0 no foreground pixel was used.

``CompositeSource[i]`` and ``CompositeClipSource[i]`` depend only on (seed, i).
"""
from __future__ import annotations

import collections
import dataclasses

import cv2
import numpy as np

from seg_jax.data import augment, io, pseudo_video


@dataclasses.dataclass(frozen=True)
class Foreground:
    """A foreground on disk: an image + mask pair, or an RGBA cutout (``mask_path`` empty)."""
    image_path: str
    mask_path: str = ""


def soften_edge(alpha: np.ndarray, sigma: float) -> np.ndarray:
    """Binary uint8 alpha (h, w, 1) -> soft uint8 alpha: a Gaussian of ``sigma`` pixels across the edge.

    Pasted with its hard (and often jagged) edge, a binary mask teaches staircase edges; the blurred edge is a
    ramp about 2.5 sigma wide centred on the drawn edge, so the 0.5 level stays where the mask was drawn.
    """
    soft = cv2.GaussianBlur(alpha[:, :, 0].astype(np.float32), (0, 0), sigma)
    return np.clip(np.rint(soft), 0, 255).astype(np.uint8)[:, :, None]


EDGE_SOFTNESS = 0.004   # sigma of the binary-mask softening, as a fraction of the foreground's longer side


def load_foreground(fg: Foreground, max_side: int = 640) -> tuple[np.ndarray, np.ndarray, bool]:
    """-> (rgb (h, w, 3) uint8, alpha (h, w, 1) uint8, cut_bottom) cropped to the alpha's bounding box (+2%
    margin), shrunk so its longer side is at most ``max_side``; a binary mask gets a soft edge
    (:func:`soften_edge`, sigma ``EDGE_SOFTNESS`` of the longer side, at least 0.7 px). ``cut_bottom``: the
    person runs off the bottom of the source photo (a portrait), so the composite must hide that straight edge
    below the frame."""
    ex = io.read_rgba_cutout(fg.image_path) if not fg.mask_path else io.read_pair(fg.image_path, fg.mask_path)
    img, alpha = ex["image"], ex["mask"]
    cut_bottom = bool((alpha[-1, :, 0] >= 128).mean() > 0.02)
    sigma = max(0.7, EDGE_SOFTNESS * max(img.shape[:2]))
    if io.is_binary_mask(alpha):   # soften at the source resolution, before cropping, so the whole ramp is kept
        alpha = soften_edge(alpha, sigma)
    ys, xs = np.nonzero(alpha[:, :, 0] > 8)
    if len(ys):
        m = max(int(0.02 * max(img.shape[:2])), int(np.ceil(3 * sigma)))
        y0, y1 = max(0, ys.min() - m), min(img.shape[0], ys.max() + 1 + m)
        x0, x1 = max(0, xs.min() - m), min(img.shape[1], xs.max() + 1 + m)
        img, alpha = img[y0:y1, x0:x1], alpha[y0:y1, x0:x1]
    longest = max(img.shape[:2])
    if longest > max_side:
        hw = (max(1, round(img.shape[0] * max_side / longest)), max(1, round(img.shape[1] * max_side / longest)))
        img, alpha = io.resize(img, hw), io.resize(alpha, hw)
    return img, alpha, cut_bottom


def load_background(path: str, max_side: int = 1024) -> np.ndarray:
    """Background image -> rgb uint8, shrunk so its longer side is at most ``max_side``."""
    img = io.read_image(path)
    longest = max(img.shape[:2])
    if longest > max_side:
        img = io.resize(img, (round(img.shape[0] * max_side / longest), round(img.shape[1] * max_side / longest)))
    return img


def _path(rng, length, amplitude, start):
    return pseudo_video.smooth_path(rng, length, amplitude, start)


def sample_person(rng: np.random.Generator, fg_hw: tuple[int, int], out_hw: tuple[int, int], length: int,
                  motion: bool, small: bool = False, cut_bottom: bool = False) -> dict:
    """Placement of one foreground: per-frame centre (cx, cy), scale, angle (arrays of length T), flip.

    A ``cut_bottom`` foreground is always anchored with its cut edge below the frame (with room for the
    motion path and a small rotation)."""
    H, W = out_hw
    fh, fw = fg_hw
    frac = rng.uniform(0.25, 0.6) if small else rng.uniform(0.4, 1.2)
    scale = min(frac * H / fh, 1.3 * W / fw)
    ph = fh * scale
    amp = 1.0 if motion else 0.0
    if cut_bottom or (rng.random() < 0.6 and not small):   # webcam-like: person cut by the bottom edge
        margin = 0.08 * ph + amp * 0.1 * H + 0.1 * fg_hw[1] * scale
        cy0 = H - ph / 2 + margin + rng.uniform(0.0, 0.25) * ph
    else:
        cy0 = rng.uniform(0.3, 0.75) * H
    cx0 = rng.uniform(0.15, 0.85) * W
    max_angle = 5.0 if cut_bottom else 15.0
    angle0 = rng.uniform(-max_angle, max_angle) if rng.random() < 0.4 else 0.0
    return {"cx": _path(rng, length, amp * 0.1 * W, cx0), "cy": _path(rng, length, amp * 0.04 * H, cy0),
            "scale": scale * _path(rng, length, amp * 0.08, 1.0), "angle": _path(rng, length, amp * 4.0, angle0),
            "flip": bool(rng.random() < 0.5),
            "gain": rng.uniform(0.9, 1.1, 3).astype(np.float32), "contrast": float(rng.uniform(0.75, 1.25)),
            "brightness": float(rng.uniform(-25, 25)), "saturation": float(rng.uniform(0.7, 1.3))}


def sample_scene(rng: np.random.Generator, fg_hws: list[tuple[int, int]], bg_hw: tuple[int, int],
                 out_hw: tuple[int, int], length: int = 1, motion: bool = False,
                 cut_bottom: list[bool] | None = None) -> dict:
    """All random choices of one composite (or pseudo-video clip of ``length`` frames)."""
    bh, bw = bg_hw
    zoom0 = float(rng.uniform(1.0, 2.0))
    short = min(bh, bw)
    amp = 1.0 if motion else 0.0
    return {
        "persons": [sample_person(rng, hw, out_hw, length, motion, small=k > 0, cut_bottom=cut)
                    for k, (hw, cut) in enumerate(zip(fg_hws, cut_bottom or [False] * len(fg_hws)))],
        "bg_cx": _path(rng, length, amp * 0.05 * short, rng.uniform(0.3, 0.7) * (bw - 1)),
        "bg_cy": _path(rng, length, amp * 0.05 * short, rng.uniform(0.3, 0.7) * (bh - 1)),
        "bg_zoom": _path(rng, length, amp * 0.05, zoom0 + (0.15 if motion else 0.0)),
        "bg_flip": bool(rng.random() < 0.5),
        "bg_blur": float(rng.uniform(0.5, 2.0)) if rng.random() < 0.3 else 0.0,
        "light_wrap": float(rng.uniform(0.2, 0.6)) if rng.random() < 0.5 else 0.0,
        "blur": float(rng.uniform(0.4, 1.2)) if rng.random() < 0.2 else 0.0,
        "noise": float(rng.uniform(1.0, 8.0)) if rng.random() < 0.4 else 0.0,
        "global_brightness": float(rng.uniform(-20, 20)), "global_contrast": float(rng.uniform(0.85, 1.15)),
    }


def colour_jitter(img: np.ndarray, p: dict, weight: np.ndarray | None = None) -> np.ndarray:
    """float32 (h, w, 3) -> float32: saturation, contrast about the (``weight``-weighted) mean, brightness,
    per-channel gain."""
    gray = img.mean(axis=2, keepdims=True)
    img = gray + (img - gray) * p["saturation"]
    if weight is None:
        mean = float(img.mean())
    else:
        mean = float((img * weight).sum() / max(3.0 * float(weight.sum()), 1e-6))
    img = (img - mean) * p["contrast"] + mean + p["brightness"]
    return img * p["gain"]


def _fg_matrix(fg_hw, person: dict, t: int) -> np.ndarray:
    """2x3 forward affine mapping foreground pixels to output pixels at frame ``t``."""
    fh, fw = fg_hw
    s, a = float(person["scale"][t]), np.deg2rad(float(person["angle"][t]))
    fx = -1.0 if person["flip"] else 1.0
    c, si = np.cos(a) * s, np.sin(a) * s
    lin = np.array([[c * fx, -si], [si * fx, c]], np.float32)     # rotate(scale(flip(x)))
    centre_in = np.array([(fw - 1) / 2, (fh - 1) / 2], np.float32)
    centre_out = np.array([person["cx"][t], person["cy"][t]], np.float32)
    return np.concatenate([lin, (centre_out - lin @ centre_in)[:, None]], axis=1)


def render(fgs: list[tuple[np.ndarray, np.ndarray]], bg: np.ndarray, scene: dict, out_hw: tuple[int, int],
           t: int = 0, rng: np.random.Generator | None = None,
           photometric: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``t`` of a scene -> (image uint8 (H, W, 3), mask uint8 (H, W, 1)).

    ``photometric=False`` skips light wrap, blur, noise and global jitter (the image is then exactly
    ``a * fg + (1 - a) * bg`` rounded, which the tests check). ``scene['is_person']`` (optional, one bool per
    layer, default all True) marks layers that are not people (hard negatives): they blend into the image like
    any layer but add nothing to the mask, and hide the people behind them.
    """
    H, W = out_hw
    m = pseudo_video.window_matrix(bg.shape[:2], out_hw, (float(scene["bg_cx"][t]), float(scene["bg_cy"][t])),
                                   float(scene["bg_zoom"][t]), 0.0)
    back = pseudo_video.warp(bg, m, out_hw).astype(np.float32)
    if scene["bg_flip"]:
        back = back[:, ::-1]
    if photometric and scene["bg_blur"] > 0:
        back = cv2.GaussianBlur(back, (0, 0), scene["bg_blur"])
    out = back
    alpha_total = np.zeros((H, W, 1), np.float32)
    is_person = scene.get("is_person") or [True] * len(scene["persons"])
    for (img, alpha), person, counts in zip(fgs, scene["persons"], is_person):
        mat = _fg_matrix(img.shape[:2], person, t)
        fg = cv2.warpAffine(img, mat, (W, H), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        a = cv2.warpAffine(alpha[:, :, 0], mat, (W, H), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        a = (a.astype(np.float32) / 255.0)[:, :, None]
        if photometric:   # jitter after warping: only H x W pixels, mean over the person
            fg = colour_jitter(fg, person, a)
        out = a * fg + (1 - a) * out
        alpha_total = (a if counts else 0.0) + (1 - a) * alpha_total   # a non-person layer hides what is behind
    if photometric:
        if scene["light_wrap"] > 0:
            sigma = 0.01 * min(H, W) * 2.0
            inside = alpha_total * (1 - cv2.GaussianBlur(alpha_total, (0, 0), sigma)[:, :, None])
            w = np.clip(inside * 2 * scene["light_wrap"], 0, 1)
            out = out * (1 - w) + cv2.GaussianBlur(back, (0, 0), 2 * sigma) * w
        out = (out - 128) * scene["global_contrast"] + 128 + scene["global_brightness"]
        if scene["blur"] > 0:
            out = cv2.GaussianBlur(out, (0, 0), scene["blur"])
        if scene["noise"] > 0 and rng is not None:
            out = out + rng.normal(0, scene["noise"], out.shape).astype(np.float32)
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    mask = np.clip(np.rint(alpha_total * 255), 0, 255).astype(np.uint8)
    return image, mask


def _cumulative(probabilities: list[float] | None, n: int, what: str) -> np.ndarray | None:
    """Draw probabilities -> their normalised cumulative sum (None: draw uniformly)."""
    if probabilities is None:
        return None
    if len(probabilities) != n:
        raise ValueError(f"{len(probabilities)} {what} probabilities for {n} {what}s")
    cumulative = np.cumsum(np.asarray(probabilities, np.float64))
    return cumulative / cumulative[-1]


def _draw(items: list, cumulative: np.ndarray | None, rng: np.random.Generator):
    if cumulative is None:
        return items[int(rng.integers(len(items)))]
    k = int(np.searchsorted(cumulative, rng.random(), side="right"))
    return items[min(k, len(items) - 1)]


class CompositeSource:
    """Random-access composites.

    Attributes:
      foregrounds: list of :class:`Foreground`; backgrounds: list of image paths.
      hw: output (height, width). size: virtual length. seed: composite ``i`` depends only on (seed, i).
      clip_length: 0 for still images {'image': (H, W, 3), 'mask': (H, W, 1)}; T > 0 for pseudo-video clips
        {'image': (T, H, W, 3), 'mask': (T, H, W, 1)} with foreground and background moving independently.
      second_person: probability of pasting a second, smaller foreground.
      foreground_probabilities: how often each foreground is drawn (sums to 1); None = equally often.
      background_probabilities: the same for the backgrounds.
      objects: non-person layers (hard negatives: animals, things) pasted with mask 0, with probability
        ``object_prob`` beside the people (behind or in front of them), and alone (one or two, no person: an
        all-zero mask) in a share ``no_person_prob`` of the composites.
    """

    def __init__(self, foregrounds: list[Foreground], backgrounds: list[str], hw: tuple[int, int],
                 size: int = 100_000, seed: int = 0, clip_length: int = 0, second_person: float = 0.15,
                 foreground_probabilities: list[float] | None = None,
                 background_probabilities: list[float] | None = None, objects: list[Foreground] = (),
                 object_prob: float = 0.0, no_person_prob: float = 0.0):
        if not foregrounds or not backgrounds:
            raise io.BadInputError(f"compositing needs foregrounds and backgrounds (got {len(foregrounds)} "
                                   f"foregrounds, {len(backgrounds)} backgrounds); check data.root")
        self.foregrounds, self.backgrounds = list(foregrounds), list(backgrounds)
        self.hw, self.size, self.seed = tuple(hw), int(size), int(seed)
        self.clip_length, self.second_person = int(clip_length), float(second_person)
        self.objects = list(objects)
        self.object_prob, self.no_person_prob = (float(object_prob), float(no_person_prob)) if objects else (0, 0)
        for name, p in (("object_prob", self.object_prob), ("no_person_prob", self.no_person_prob)):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} = {p}; it is a probability in [0, 1]")
        self.stats: collections.Counter = collections.Counter()   # files skipped as undecodable, per process
        self._fg_cumulative = _cumulative(foreground_probabilities, len(self.foregrounds), "foreground")
        self._bg_cumulative = _cumulative(background_probabilities, len(self.backgrounds), "background")

    def _draw_foreground(self, rng: np.random.Generator) -> Foreground:
        return _draw(self.foregrounds, self._fg_cumulative, rng)

    def __len__(self) -> int:
        return self.size

    def _load(self, draw, load, attempts: int = 20):
        """``load(draw())``, drawing again (counted, warned once per file) while the drawn file does not decode."""
        for _ in range(attempts):
            item = draw()
            try:
                return load(item)
            except io.BadInputError as e:
                io.skip_unreadable(getattr(item, "image_path", item), e, self.stats)
        raise io.BadInputError(f"compositing: {attempts} drawn files in a row do not decode; check the "
                               "foregrounds and backgrounds (see the warnings)")

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.size:
            raise IndexError(index)
        rng = augment.example_rng(self.seed, index, 0xC0)
        n_fg = 2 if rng.random() < self.second_person else 1
        n_obj = 0
        if self.objects:   # drawn only when objects are given, so composites without them are unchanged
            if rng.random() < self.no_person_prob:
                n_fg, n_obj = 0, 1 + int(rng.random() < 0.3)
            elif rng.random() < self.object_prob:
                n_obj = 1
        side = 2 * max(self.hw)   # no layer is ever magnified from more than this
        fgs = [self._load(lambda: self._draw_foreground(rng), lambda fg: load_foreground(fg, side))
               for _ in range(n_fg)]
        fgs += [self._load(lambda: self.objects[int(rng.integers(len(self.objects)))],
                           lambda fg: load_foreground(fg, side)) for _ in range(n_obj)]
        bg = self._load(lambda: _draw(self.backgrounds, self._bg_cumulative, rng),
                        lambda path: load_background(path, side))
        length = max(1, self.clip_length)
        scene = sample_scene(rng, [f[0].shape[:2] for f in fgs], bg.shape[:2], self.hw, length,
                             motion=self.clip_length > 0, cut_bottom=[f[2] and k < n_fg for k, f in enumerate(fgs)])
        layers = [(f[0], f[1]) for f in fgs]
        if n_obj:
            scene["is_person"] = [True] * n_fg + [False] * n_obj
            if n_fg and rng.random() < 0.5:   # the object behind the people instead of in front of them
                order = list(range(n_fg, n_fg + n_obj)) + list(range(n_fg))
                layers = [layers[k] for k in order]
                scene["persons"] = [scene["persons"][k] for k in order]
                scene["is_person"] = [scene["is_person"][k] for k in order]
        frames = [render(layers, bg, scene, self.hw, t, rng) for t in range(length)]
        if self.clip_length == 0:
            return {"image": frames[0][0], "mask": frames[0][1]}
        return {"image": np.stack([f[0] for f in frames]), "mask": np.stack([f[1] for f in frames])}

    def __repr__(self) -> str:
        return (f"CompositeSource(fg={len(self.foregrounds)}, bg={len(self.backgrounds)}, "
                f"objects={len(self.objects)}, hw={self.hw}, size={self.size}, T={self.clip_length})")
