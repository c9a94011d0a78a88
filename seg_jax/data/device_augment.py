"""Augmentation as jitted JAX on the accelerator, from decoded uint8 arrays held in (device) memory.

The Grain path decodes and augments on host CPU cores, which caps a GPU run at what the host can feed. Here the
data is decoded once (:func:`pack_pairs`: every pair resized to a fixed square, uint8) and each batch is drawn
and augmented by one jitted function of ``(arrays, step)``: the random key is ``fold_in(PRNGKey(seed), step)``,
so a batch depends only on (seed, step), a run resumes exactly from its step, and the same code runs on CPU
and GPU. Shapes: ``images`` (N, S, S, 3) uint8, ``masks`` (N, S, S, 1) uint8, ``backgrounds`` (M, S, S, 3)
uint8, optionally ``weights`` (N,) float32 (each pair's sampling probability); a still batch is
``{'image': (B, H, W, 3), 'mask': (B, H, W, 1)}`` uint8 and a clip batch adds a time axis (B, T, H, W, C), as
the Grain pipeline yields. Real video (:func:`pack_videos`) adds ``clip_frames`` (F, Hv, Wv, 3),
``clip_masks`` (F, Hv, Wv, 1) uint8 and ``clip_starts`` (K,) int32: the first frame of every clip that stays
inside one sequence.

Per example: a random affine (scale, translation, rotation, flip) sampled with bilinear filtering, pasted on a
random background by its alpha (or kept on its own background), colour and brightness jitter, a soft shadow
or light gradient, blur, sensor noise and JPEG-like 8x8 blocking. A clip moves the person along a smooth
random path across the background (which drifts on its own, like a hand-held camera) with webcam-like
brightness flicker and fresh noise per frame. A real clip keeps its own motion under one random zoom, shift,
rotation and flip, the same colour change on every frame, and webcam-like flicker and noise per frame.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class DeviceAugment:
    """Ranges of the random choices (probabilities in [0, 1], the rest in the units named)."""
    scale: tuple[float, float] = (0.6, 1.15)       # person size relative to the frame
    translate: float = 0.25                         # max shift, as a fraction of the frame
    rotate_degrees: float = 15.0
    flip: float = 0.5
    composite: float = 0.6                          # probability of a new background
    brightness: float = 0.25                        # +- added, on [0, 1] pixels
    contrast: float = 0.3                           # x (1 +- contrast)
    saturation: float = 0.4
    shadow: float = 0.3                             # probability of a linear light gradient over the frame
    blur: float = 0.2                               # probability of a 3x3 blur
    noise: float = 0.03                             # max sensor-noise std
    blocking: float = 0.2                           # probability of JPEG-like 8x8 blocking
    clip_motion: float = 0.08                       # person's shift over a clip, fraction of the frame
    clip_flicker: float = 0.04                      # per-frame brightness change in a clip

    def __post_init__(self):
        for name in ("flip", "composite", "shadow", "blur", "blocking"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise ValueError(f"DeviceAugment.{name} is a probability in [0, 1], got {getattr(self, name)!r}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"DeviceAugment.scale must be 0 < low <= high, got {self.scale!r}")


def pack_pairs(pairs: Sequence[dict], size: int) -> dict[str, np.ndarray]:
    """Decoded examples ``{'image': (H, W, 3), 'mask': (H, W, 1)}`` -> stacked uint8 arrays at ``size`` x ``size``
    (letterboxed on black so the person keeps its aspect), ready to be put on a device once."""
    import cv2
    images = np.zeros((len(pairs), size, size, 3), np.uint8)
    masks = np.zeros((len(pairs), size, size, 1), np.uint8)
    for i, ex in enumerate(pairs):
        h, w = ex["image"].shape[:2]
        k = size / max(h, w)
        nh, nw = max(1, round(h * k)), max(1, round(w * k))
        top, left = (size - nh) // 2, (size - nw) // 2
        images[i, top:top + nh, left:left + nw] = cv2.resize(ex["image"], (nw, nh), interpolation=cv2.INTER_AREA)
        masks[i, top:top + nh, left:left + nw, 0] = cv2.resize(ex["mask"][..., 0], (nw, nh),
                                                               interpolation=cv2.INTER_AREA)
    return {"images": images, "masks": masks}


def pack_videos(sequences: Sequence[Sequence[dict]], clip_length: int, height: int, stride: int = 1
                ) -> dict[str, np.ndarray]:
    """Decoded video sequences (each a list of ``{'image', 'mask'}`` frames of one size) -> uint8 arrays at
    ``height`` rows (width by the first sequence's aspect, a multiple of 8; other aspects are stretched) and the
    start frame of every ``clip_length``-frame clip (frames ``start, start + stride, ...``) inside one sequence."""
    import cv2
    if not sequences or not sequences[0]:
        raise ValueError("pack_videos needs at least one sequence with frames")
    h0, w0 = sequences[0][0]["image"].shape[:2]
    width = max(8, int(round(height * w0 / h0 / 8)) * 8)
    frames, masks, starts = [], [], []
    for seq in sequences:
        first = len(frames)
        for ex in seq:
            frames.append(cv2.resize(ex["image"], (width, height), interpolation=cv2.INTER_AREA))
            masks.append(cv2.resize(ex["mask"][..., 0], (width, height), interpolation=cv2.INTER_AREA)[..., None])
        span = (clip_length - 1) * stride
        starts += range(first, first + max(0, len(seq) - span))
    if not starts:
        raise ValueError(f"no sequence is long enough for clips of {clip_length} frames at stride {stride}")
    return {"clip_frames": np.stack(frames), "clip_masks": np.stack(masks),
            "clip_starts": np.asarray(starts, np.int32)}


def _affine_sample(image: jax.Array, matrix: jax.Array, out_hw: tuple[int, int]) -> jax.Array:
    """Bilinear sample of ``image`` (S, S, C) float at ``matrix`` @ (x, y, 1) of each output pixel (zeros outside)."""
    h, w = out_hw
    ys, xs = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32), indexing="ij")
    src = jnp.einsum("ij,jhw->ihw", matrix, jnp.stack([xs, ys, jnp.ones_like(xs)]))
    coords = jnp.stack([src[1], src[0]])
    return jnp.stack([jax.scipy.ndimage.map_coordinates(image[..., c], coords, order=1, mode="constant")
                      for c in range(image.shape[-1])], axis=-1)


def _person_matrix(key: jax.Array, size: int, out_hw: tuple[int, int], aug: DeviceAugment, shift: jax.Array):
    """Output pixel -> source pixel of the packed square: random scale, rotation, flip, translation + ``shift``."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    h, w = out_hw
    scale = jax.random.uniform(k1, (), minval=aug.scale[0], maxval=aug.scale[1]) * max(h, w) / size
    angle = jnp.deg2rad(jax.random.uniform(k2, (), minval=-aug.rotate_degrees, maxval=aug.rotate_degrees))
    flip = jnp.where(jax.random.uniform(k3) < aug.flip, -1.0, 1.0)
    offset = jax.random.uniform(k4, (2,), minval=-aug.translate, maxval=aug.translate) * jnp.array([w, h]) + shift
    c, s = jnp.cos(angle) / scale, jnp.sin(angle) / scale
    centre_out = jnp.array([w / 2, h / 2]) + offset
    rot = jnp.array([[c * flip, s], [-s * flip, c]])
    t = jnp.array([size / 2, size / 2]) - rot @ centre_out
    return jnp.concatenate([rot, t[:, None]], axis=1)


def _frame_matrix(key: jax.Array, src_hw: tuple[int, int], out_hw: tuple[int, int], aug: DeviceAugment):
    """Output pixel -> source pixel of a video frame: the output covered by the frame (no empty border at zoom 1),
    zoomed in by up to 1 / ``aug.scale[0]`` (people are small in wide shots), shifted inside the frame, rotated
    and flipped."""
    k1, k2, k3, k4 = jax.random.split(key, 4)
    (sh, sw), (h, w) = src_hw, out_hw
    zoom = jax.random.uniform(k1, (), minval=1.0, maxval=1.0 / aug.scale[0])
    per_out = min(sh / h, sw / w) / zoom                     # source pixels per output pixel
    angle = jnp.deg2rad(jax.random.uniform(k2, (), minval=-aug.rotate_degrees, maxval=aug.rotate_degrees) * 0.5)
    flip = jnp.where(jax.random.uniform(k3) < aug.flip, -1.0, 1.0)
    room = jnp.maximum(jnp.array([sw, sh]) - per_out * jnp.array([w, h]), 0.0) / 2
    centre_src = jnp.array([sw / 2, sh / 2]) + jax.random.uniform(k4, (2,), minval=-1, maxval=1) * room
    c, s = jnp.cos(angle) * per_out, jnp.sin(angle) * per_out
    rot = jnp.array([[c * flip, -s], [s * flip, c]])
    t = centre_src - rot @ jnp.array([w / 2, h / 2])
    return jnp.concatenate([rot, t[:, None]], axis=1)


def _photometric(key: jax.Array, x: jax.Array, aug: DeviceAugment) -> jax.Array:
    """Colour, contrast, brightness, light gradient on (H, W, 3) in [0, 1]."""
    k = jax.random.split(key, 6)
    grey = jnp.mean(x, axis=-1, keepdims=True)
    x = grey + (x - grey) * (1 + jax.random.uniform(k[0], (), minval=-aug.saturation, maxval=aug.saturation))
    mean = jnp.mean(x)
    x = mean + (x - mean) * (1 + jax.random.uniform(k[1], (), minval=-aug.contrast, maxval=aug.contrast))
    x = x + jax.random.uniform(k[2], (), minval=-aug.brightness, maxval=aug.brightness)
    h, w = x.shape[:2]
    direction = jax.random.normal(k[3], (2,))
    direction = direction / (jnp.linalg.norm(direction) + 1e-6)
    ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w), indexing="ij")
    ramp = 1 + 0.35 * (direction[0] * xs + direction[1] * ys) * jax.random.uniform(k[4], (), minval=0.3, maxval=1)
    x = jnp.where(jax.random.uniform(k[5]) < aug.shadow, x * ramp[..., None], x)
    return x


def _degrade(key: jax.Array, x: jax.Array, aug: DeviceAugment) -> jax.Array:
    """Blur, JPEG-like 8x8 blocking and sensor noise on (H, W, 3) in [0, 1] (H, W multiples of 8)."""
    k = jax.random.split(key, 4)
    kernel = jnp.array([1.0, 2.0, 1.0]) / 4.0
    pad = jnp.pad(x, ((1, 1), (1, 1), (0, 0)), mode="edge")
    rows = kernel[0] * pad[:-2] + kernel[1] * pad[1:-1] + kernel[2] * pad[2:]
    smooth = kernel[0] * rows[:, :-2] + kernel[1] * rows[:, 1:-1] + kernel[2] * rows[:, 2:]
    x = jnp.where(jax.random.uniform(k[0]) < aug.blur, smooth, x)
    h, w = x.shape[:2]
    blocks = x.reshape(h // 8, 8, w // 8, 8, 3).mean(axis=(1, 3), keepdims=True)
    blocky = (0.6 * x.reshape(h // 8, 8, w // 8, 8, 3) + 0.4 * blocks).reshape(h, w, 3)
    x = jnp.where(jax.random.uniform(k[1]) < aug.blocking, blocky, x)
    std = jax.random.uniform(k[2], (), maxval=aug.noise)
    return x + std * jax.random.normal(k[3], x.shape)


def _finish_frame(key: jax.Array, frame: jax.Array, alpha: jax.Array, clip_length: int, aug: DeviceAugment):
    """Per-frame flicker (clips only), blur, blocking and noise -> (uint8 frame, uint8 mask)."""
    flicker = jax.random.uniform(key, (), minval=-aug.clip_flicker, maxval=aug.clip_flicker) * (clip_length > 1)
    frame = _degrade(jax.random.fold_in(key, 1), frame + flicker, aug)
    return (jnp.clip(frame * 255.0 + 0.5, 0, 255).astype(jnp.uint8),
            jnp.clip(alpha * 255.0 + 0.5, 0, 255).astype(jnp.uint8))


def _real_clip(key, frames, masks, starts, out_hw, clip_length, stride, aug: DeviceAugment):
    """-> (image (T, H, W, 3) uint8, mask (T, H, W, 1) uint8): one real clip under one random view."""
    k_pick, k_view, k_photo, k_frames = jax.random.split(key, 4)
    start = starts[jax.random.randint(k_pick, (), 0, starts.shape[0])]
    matrix = _frame_matrix(k_view, frames.shape[1:3], out_hw, aug)
    out_images, out_masks = [], []
    for t in range(clip_length):
        frame = jnp.concatenate([frames[start + t * stride], masks[start + t * stride]], axis=-1)
        layer = _affine_sample(frame.astype(jnp.float32) / 255.0, matrix, out_hw)
        rgb = _photometric(k_photo, layer[..., :3], aug)
        image, mask = _finish_frame(jax.random.fold_in(k_frames, t), rgb, layer[..., 3:4], clip_length, aug)
        out_images.append(image)
        out_masks.append(mask)
    return jnp.stack(out_images), jnp.stack(out_masks)


def _one_example(key, images, masks, backgrounds, weights, out_hw, clip_length, aug: DeviceAugment):
    """-> (image (T, H, W, 3) uint8, mask (T, H, W, 1) uint8) for one drawn example (T = 1 for stills)."""
    n, size = images.shape[0], images.shape[1]
    k_pick, k_bg, k_comp, k_pose, k_path, k_bg_path, k_photo, k_frames = jax.random.split(key, 8)
    index = (jax.random.randint(k_pick, (), 0, n) if weights is None
             else jax.random.choice(k_pick, n, p=weights))
    person = jnp.concatenate([images[index], masks[index], jnp.full(masks[index].shape, 255, jnp.uint8)],
                             axis=-1).astype(jnp.float32) / 255.0          # RGB, alpha, coverage of the photo
    background = backgrounds[jax.random.randint(k_bg, (), 0, backgrounds.shape[0])].astype(jnp.float32) / 255.0
    use_bg = jax.random.uniform(k_comp) < aug.composite
    h, w = out_hw
    wh = jnp.array([w, h], jnp.float32)
    path = jax.random.uniform(k_path, (2,), minval=-1, maxval=1) * aug.clip_motion * wh
    bg_path = jax.random.uniform(k_bg_path, (2,), minval=-1, maxval=1) * aug.clip_motion * 0.5 * wh
    bg_scale = max(h, w) / backgrounds.shape[1]
    out_images, out_masks = [], []
    for t in range(clip_length):
        phase = t / max(clip_length - 1, 1) - 0.5 if clip_length > 1 else 0.0
        layer = _affine_sample(person, _person_matrix(k_pose, size, out_hw, aug, path * phase), out_hw)
        bg_matrix = jnp.array([[1 / bg_scale, 0, 0], [0, 1 / bg_scale, 0]]) + jnp.concatenate(
            [jnp.zeros((2, 2)), (-bg_path * phase / bg_scale)[:, None]], axis=1)
        scene = _affine_sample(background, bg_matrix, out_hw)
        rgb, alpha, coverage = layer[..., :3], layer[..., 3:4], layer[..., 4:5]
        # a new background under the person by its alpha, or the person's own photo where it reaches
        keep = jnp.where(use_bg, alpha, coverage)
        frame = keep * rgb + (1 - keep) * scene
        frame = _photometric(k_photo, frame, aug)
        image, mask = _finish_frame(jax.random.fold_in(k_frames, t), frame, alpha, clip_length, aug)
        out_images.append(image)
        out_masks.append(mask)
    return jnp.stack(out_images), jnp.stack(out_masks)


@functools.partial(jax.jit, static_argnames=("batch_size", "out_hw", "clip_length", "aug", "real_clips",
                                             "clip_stride"))
def device_batch(arrays: dict, seed_key: jax.Array, step: jax.Array, *, batch_size: int, out_hw: tuple[int, int],
                 clip_length: int = 0, aug: DeviceAugment = DeviceAugment(), real_clips: int = 0,
                 clip_stride: int = 1) -> dict:
    """The batch of ``step``: ``arrays`` {'images', 'masks', 'backgrounds'[, 'weights'][, 'clip_*']} (on the
    device), ``seed_key`` the run's ``PRNGKey(seed)``. ``clip_length`` 0 gives stills (B, H, W, C), T > 0 clips
    (B, T, H, W, C); the last ``real_clips`` of those are real video clips (needs the ``clip_*`` arrays), the
    others pseudo-video made from the stills."""
    if out_hw[0] % 8 or out_hw[1] % 8:
        raise ValueError(f"out_hw must be multiples of 8, got {out_hw}")
    if not 0 <= real_clips <= batch_size or (real_clips and (clip_length < 1 or "clip_frames" not in arrays)):
        raise ValueError(f"real_clips={real_clips} needs clip_length >= 1, the packed videos and <= batch_size")
    keys = jax.random.split(jax.random.fold_in(seed_key, step), batch_size)
    frames = max(1, clip_length)
    weights = arrays.get("weights")
    made = batch_size - real_clips
    parts = []
    if made:
        parts.append(jax.vmap(lambda k: _one_example(k, arrays["images"], arrays["masks"], arrays["backgrounds"],
                                                     weights, out_hw, frames, aug))(keys[:made]))
    if real_clips:
        parts.append(jax.vmap(lambda k: _real_clip(k, arrays["clip_frames"], arrays["clip_masks"],
                                                   arrays["clip_starts"], out_hw, frames, clip_stride,
                                                   aug))(keys[made:]))
    images = jnp.concatenate([p[0] for p in parts])
    masks = jnp.concatenate([p[1] for p in parts])
    if clip_length == 0:
        images, masks = images[:, 0], masks[:, 0]
    return {"image": images, "mask": masks}


__all__ = ["DeviceAugment", "device_batch", "pack_pairs", "pack_videos"]
