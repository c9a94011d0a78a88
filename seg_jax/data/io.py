"""Reading images and masks from files, with explicit handling of bad input.

Schema of everything returned here: ``image`` uint8 (H, W, 3) RGB; ``mask`` uint8 (H, W, 1), 0 = background,
255 = person, values in between = soft alpha.

Policy (issue 4, "bad input"):
- cheap byte-level checks (:func:`check_file`) find zero-byte, non-image and truncated files when a folder is
  listed; the folder source skips such pairs and counts them;
- conversions done while decoding (grayscale / RGBA / 16-bit images, RGB or palette masks, 0/1 masks, masks
  smaller than the image with the same aspect ratio) are applied and counted in an optional ``stats`` Counter;
- anything that cannot be converted without guessing raises :class:`BadInputError` with one line naming the
  file and the fix. A silently wrong mask is never produced.
"""
from __future__ import annotations

import collections
import logging
import os

import cv2
import numpy as np

from seg_jax.data.orientation import apply_orientation, exif_orientation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
_ASPECT_TOLERANCE = 0.02
_GRAY_SPREAD = 16         # max channel difference of an RGB mask still read as gray


class BadInputError(ValueError):
    """A data file that cannot be used; the message names the file and the fix."""


def _count(stats: collections.Counter | None, key: str) -> None:
    if stats is not None:
        stats[key] += 1


def skip_unreadable(path: str, error: Exception, stats: collections.Counter) -> None:
    """Count a file that passed the listing's byte check but does not decode, warning once per file: training
    and evaluation skip it (the reader takes the next example) rather than stop minutes into a run."""
    stats["skipped_undecodable"] += 1
    if stats[f"warned:{path}"] == 0:
        stats[f"warned:{path}"] = 1
        logging.warning("skipping %s (%d undecodable so far): %s", path, stats["skipped_undecodable"], error)


def check_file(path: str) -> str | None:
    """Byte-level sanity check of an image file without decoding it.

    Returns None when the file looks usable, otherwise a short reason: 'zero-byte', 'not an image',
    'truncated'. JPEG must start with FFD8 and end with FFD9; PNG must start with its signature and end with an
    IEND chunk.
    """
    size = os.path.getsize(path)
    if size == 0:
        return "zero-byte"
    with open(path, "rb") as f:
        head = f.read(12)
        f.seek(max(0, size - 64))
        tail = f.read()
    tail = tail.rstrip(b"\x00\r\n ")
    if head[:3] == b"\xff\xd8\xff":
        return None if tail.endswith(b"\xff\xd9") else "truncated"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return None if b"IEND" in tail[-12:] else "truncated"
    if head[:2] == b"BM" or (head[:4] == b"RIFF" and head[8:12] == b"WEBP") or head[:4] in (
            b"II*\x00", b"MM\x00*"):
        return None
    return "not an image"


def decode(data: bytes, name: str) -> np.ndarray:
    """Decode encoded image bytes with OpenCV, unchanged (any depth/channels) but upright by the EXIF orientation
    (:mod:`seg_jax.data.orientation`: the one rule for images and masks). Raises BadInputError."""
    if len(data) == 0:
        raise BadInputError(f"{name}: zero-byte file; delete it or replace it with a valid image")
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        raise BadInputError(f"{name}: not a decodable image (corrupt, truncated or not an image); "
                            "delete it or re-export it as PNG/JPEG")
    return apply_orientation(arr, exif_orientation(data))


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _to_uint8(arr: np.ndarray, name: str, stats, kind: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        _count(stats, f"{kind}_16bit_to_8bit")
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if arr.dtype in (np.float32, np.float64):
        _count(stats, f"{kind}_float_to_8bit")
        scale = 255.0 if float(arr.max(initial=0)) <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    raise BadInputError(f"{name}: unsupported pixel type {arr.dtype}; re-save it as 8-bit PNG/JPEG")


def image_from_array(arr: np.ndarray, name: str, stats: collections.Counter | None = None) -> np.ndarray:
    """Decoded OpenCV array (BGR/BGRA/gray, 8 or 16 bit) -> uint8 (H, W, 3) RGB, counting conversions."""
    arr = _to_uint8(arr, name, stats, "image")
    if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        _count(stats, "image_gray_to_rgb")
        return np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] == 4:
        _count(stats, "image_rgba_alpha_dropped")
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise BadInputError(f"{name}: image has shape {arr.shape}; expected H x W x 3")
    return np.ascontiguousarray(arr[:, :, ::-1])


def mask_from_array(arr: np.ndarray, name: str, stats: collections.Counter | None = None) -> np.ndarray:
    """Decoded mask array -> uint8 (H, W, 1) in 0..255.

    - 16-bit / float masks are rescaled to 0..255;
    - RGB masks whose channels agree within 16 levels (gray saved as RGB, also as JPEG) use their mean;
      coloured masks (RGB label colours or palette PNGs, which OpenCV expands to colours) become 255 wherever
      any channel is non-zero;
    - RGBA masks use the colour channels, or the alpha channel when the colours are all zero;
    - masks whose only values are 0 and 1 are scaled to 0/255.
    """
    arr = _to_uint8(arr, name, stats, "mask")
    if arr.ndim == 3 and arr.shape[2] == 4:
        if arr[:, :, :3].any():
            arr = arr[:, :, :3]
        else:
            _count(stats, "mask_from_alpha")
            arr = arr[:, :, 3]
    if arr.ndim == 3 and arr.shape[2] == 3:
        spread = int((arr.max(axis=2).astype(np.int16) - arr.min(axis=2)).max())
        if spread <= _GRAY_SPREAD:   # gray saved as RGB (JPEG may make the channels differ a little)
            _count(stats, "mask_rgb_gray")
            arr = np.rint(arr.mean(axis=2)).astype(np.uint8)
        else:
            _count(stats, "mask_colour_binarised")
            arr = np.where(arr.any(axis=2), 255, 0).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise BadInputError(f"{name}: mask has shape {arr.shape}; expected H x W (gray) or H x W x 3")
    if arr.max(initial=0) == 1:
        _count(stats, "mask_01_to_255")
        arr = arr * np.uint8(255)
    return arr[:, :, None]


def is_binary_mask(mask: np.ndarray) -> bool:
    """True when a uint8 mask holds only 0 and 255 (hand-drawn or tool-made), False for a soft matte."""
    return bool(np.isin(mask, (0, 255)).all())


def match_mask_size(mask: np.ndarray, hw: tuple[int, int], name: str,
                    stats: collections.Counter | None = None) -> np.ndarray:
    """Resize a (h, w, 1) mask to the image size ``hw`` with nearest-neighbour when the aspect ratio matches.

    A different aspect ratio means the mask does not belong to this image: BadInputError naming the file.
    """
    h, w = mask.shape[:2]
    if (h, w) == tuple(hw):
        return mask
    ratio = (w / h) / (hw[1] / hw[0])
    if abs(ratio - 1.0) > _ASPECT_TOLERANCE:
        raise BadInputError(f"{name}: mask is {w}x{h} but its image is {hw[1]}x{hw[0]} (different aspect ratio); "
                            "fix the mask or remove the pair")
    _count(stats, "mask_resized_nearest")
    return cv2.resize(mask[:, :, 0], (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)[:, :, None]


def read_image(path: str, stats: collections.Counter | None = None) -> np.ndarray:
    """Image file -> uint8 (H, W, 3) RGB."""
    return image_from_array(decode(read_bytes(path), path), path, stats)


def read_mask(path: str, hw: tuple[int, int] | None = None,
              stats: collections.Counter | None = None) -> np.ndarray:
    """Mask file -> uint8 (H, W, 1); resized to ``hw`` (nearest) when given and the aspect ratio matches."""
    mask = mask_from_array(decode(read_bytes(path), path), path, stats)
    return mask if hw is None else match_mask_size(mask, hw, path, stats)


def read_pair(image_path: str, mask_path: str, stats: collections.Counter | None = None) -> dict:
    """An image and its mask -> {'image': (H, W, 3), 'mask': (H, W, 1)} uint8 at the image's size."""
    image = read_image(image_path, stats)
    return {"image": image, "mask": read_mask(mask_path, image.shape[:2], stats)}


def read_rgba_cutout(path: str, stats: collections.Counter | None = None) -> dict:
    """RGBA PNG cutout -> {'image': (H, W, 3), 'mask': alpha (H, W, 1)}. A file without alpha is an error."""
    arr = _to_uint8(decode(read_bytes(path), path), path, stats, "cutout")
    if arr.ndim != 3 or arr.shape[2] != 4:
        raise BadInputError(f"{path}: cutout has no alpha channel; save it as an RGBA PNG")
    return {"image": np.ascontiguousarray(arr[:, :, 2::-1]), "mask": np.ascontiguousarray(arr[:, :, 3:4])}


def encode_png(arr: np.ndarray) -> bytes:
    """uint8 (H, W, 3) RGB or (H, W, 1)/(H, W) gray -> PNG bytes."""
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    if not ok:
        raise ValueError("PNG encoding failed")
    return buf.tobytes()


def resize(arr: np.ndarray, hw: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize (H, W, C) uint8 to ``hw``; area filter when shrinking, linear when growing (or nearest)."""
    h, w = arr.shape[:2]
    if (h, w) == tuple(hw):
        return arr
    if nearest:
        interp = cv2.INTER_NEAREST
    else:
        interp = cv2.INTER_AREA if hw[0] < h and hw[1] < w else cv2.INTER_LINEAR
    out = cv2.resize(arr, (hw[1], hw[0]), interpolation=interp)
    return out.reshape(hw[0], hw[1], arr.shape[2])
