"""Make a smaller copy of the real data (same layout and file names, so the held-out split is unchanged).

    python -m seg_jax.data.downscale --src ../shared/data --dst data_local/shared512 --max_side 512

Used to carry the data to a remote GPU machine (a few tens of MB instead of ~140 MB). Images are written as
JPEG (quality ``--jpeg_quality``) with their longest side at most ``--max_side`` (never enlarged); masks are
resized to exactly their image's new size: soft mattes (all of portraits/, and any mask with values other than 0
and 255, e.g. selfies' aiseg_*) with area averaging, binary masks (people, fullbody, DAVIS, selfies' eg_*) with
area averaging then a threshold at 128 so they stay binary. Cutouts (RGBA, already small) and any
file that is not an image are copied as they are. An existing file in ``--dst`` is never overwritten.
"""
from __future__ import annotations

import os
import shutil

import cv2
import numpy as np

from seg_jax.common.writer import write_bytes
from seg_jax.data import io

SOFT_MASK_FOLDERS = ("portraits",)


def scaled_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled so that max(h, w) <= max_side, aspect kept, never enlarged."""
    s = min(1.0, max_side / max(h, w))
    return max(1, round(h * s)), max(1, round(w * s))


def _write(path: str, arr: np.ndarray, jpeg_quality: int) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.lower().endswith((".jpg", ".jpeg")) else []
    ok, buf = cv2.imencode(os.path.splitext(path)[1], arr, params)
    if not ok:
        raise io.BadInputError(f"{path}: could not encode; check the file extension")
    write_bytes(path, buf.tobytes())


def _shrink_image(src: str, dst: str, max_side: int, quality: int) -> tuple[int, int]:
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    if img is None:
        raise io.BadInputError(f"{src}: not a readable image; remove it or replace it")
    hw = scaled_size(*img.shape[:2], max_side)
    if hw != img.shape[:2]:
        img = cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    _write(os.path.splitext(dst)[0] + ".jpg", img, quality)
    return hw


def _shrink_mask(src: str, dst: str, hw: tuple[int, int], soft: bool) -> None:
    mask = cv2.imread(src, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise io.BadInputError(f"{src}: not a readable mask; remove the pair or replace the mask")
    if mask.shape[:2] != hw:
        soft = soft or not io.is_binary_mask(mask)   # a matte in a binary folder (selfies' aiseg_*)
        mask = cv2.resize(mask, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
        if not soft:
            mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    _write(os.path.splitext(dst)[0] + ".png", mask, 0)


def _image_mask_dirs(root: str) -> list[tuple[str, str, bool]]:
    """(images dir, masks dir, soft) for every images/+masks/ or frames/+masks/ pair under root."""
    out = []
    for dirpath, dirnames, _ in os.walk(root):
        for name in ("images", "frames"):
            if name in dirnames and "masks" in dirnames:
                soft = os.path.relpath(dirpath, root).split(os.sep)[0] in SOFT_MASK_FOLDERS
                out.append((os.path.join(dirpath, name), os.path.join(dirpath, "masks"), soft))
    return out


def downscale_tree(src_root: str, dst_root: str, max_side: int = 512, jpeg_quality: int = 90) -> dict[str, int]:
    """Copy ``src_root`` to ``dst_root`` with every image/mask pair shrunk. Returns counts per kind."""
    if not os.path.isdir(src_root):
        raise io.BadInputError(f"{src_root}: no such folder; pass --src=<real data root, e.g. ../shared/data>")
    if max_side < 32:
        raise ValueError(f"--max_side={max_side} is too small; use at least 32 (e.g. 512)")
    counts = {"pairs": 0, "images": 0, "copied": 0}
    paired = _image_mask_dirs(src_root)
    handled = {d for a, b, _ in paired for d in (a, b)}
    for img_dir, mask_dir, soft in paired:
        masks = {os.path.splitext(n)[0]: n for n in os.listdir(mask_dir)}
        out_img = os.path.join(dst_root, os.path.relpath(img_dir, src_root))
        out_mask = os.path.join(dst_root, os.path.relpath(mask_dir, src_root))
        os.makedirs(out_img, exist_ok=True)
        os.makedirs(out_mask, exist_ok=True)
        for name in sorted(os.listdir(img_dir)):
            if not name.lower().endswith(io.IMAGE_EXTENSIONS):
                continue
            stem = os.path.splitext(name)[0]
            dst_img = os.path.join(out_img, stem + ".jpg")
            if os.path.exists(dst_img):
                continue
            hw = _shrink_image(os.path.join(img_dir, name), dst_img, max_side, jpeg_quality)
            if stem in masks:
                _shrink_mask(os.path.join(mask_dir, masks[stem]), os.path.join(out_mask, stem + ".png"), hw, soft)
            counts["pairs"] += 1
    for dirpath, _, filenames in os.walk(src_root):
        if dirpath in handled:
            continue
        out_dir = os.path.join(dst_root, os.path.relpath(dirpath, src_root))
        os.makedirs(out_dir, exist_ok=True)
        for name in sorted(filenames):
            src, dst = os.path.join(dirpath, name), os.path.join(out_dir, name)
            is_background = os.path.basename(dirpath) == "backgrounds"
            if is_background and name.lower().endswith((".jpg", ".jpeg")):
                if not os.path.exists(dst):
                    _shrink_image(src, dst, max_side, jpeg_quality)
                    counts["images"] += 1
            elif not os.path.exists(dst) and not name.lower().endswith((".mp4", ".mov", ".avi")):
                shutil.copy2(src, dst)
                counts["copied"] += 1
    return counts


def main(argv=None) -> None:
    from absl import app, flags

    flags.DEFINE_string("src", None, "Real data root (e.g. ../shared/data).")
    flags.DEFINE_string("dst", None, "Output folder (created; existing files are kept).")
    flags.DEFINE_integer("max_side", 512, "Longest side of the written images, in pixels.")
    flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the written images.")
    flags.mark_flags_as_required(["src", "dst"])

    def run(_):
        f = flags.FLAGS
        try:
            counts = downscale_tree(f.src, f.dst, f.max_side, f.jpeg_quality)
        except (io.BadInputError, ValueError, OSError) as e:
            raise SystemExit(f"seg_jax.data.downscale: error: {e}") from None
        print(f"seg_jax.data.downscale: {counts['pairs']} pairs, {counts['images']} backgrounds shrunk, "
              f"{counts['copied']} files copied -> {f.dst}")

    app.run(run, argv=argv)


if __name__ == "__main__":
    main()
