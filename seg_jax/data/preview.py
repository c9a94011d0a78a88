"""Write a picture grid of what a config feeds the model: images with the mask overlaid; clips as rows.

  python -m seg_jax.data.preview --config configs/mobilenet.py --config.data.root=../shared/data --out grid.png
  python -m seg_jax.data.preview --config configs/convlstm.py --config.data.root=../shared/data --out clips.png
  python -m seg_jax.data.preview --config configs/mobilenet.py:tiny --split val --out tiny_val.png
"""
from __future__ import annotations

import cv2
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from seg_jax import data

_CONFIG = config_flags.DEFINE_config_file("config", None, "config file (configs/*.py[:variant])")
_OUT = flags.DEFINE_string("out", "grid.png", "output PNG path")
_SPLIT = flags.DEFINE_string("split", "train", "train | val | test")
_SUBSET = flags.DEFINE_string("subset", None,
                              "held-out subset for val/test (portraits | selfies | people | fullbody | davis)")
_BATCHES = flags.DEFINE_integer("batches", 1, "number of batches to show")
_SEED = flags.DEFINE_integer("seed", None, "pipeline seed (default: config.seed)")


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 + (H, W, 1) uint8 -> (H, W, 3): person tinted green, mask contour (at 128) in yellow."""
    a = mask.astype(np.float32) / 255.0 * 0.45
    out = image.astype(np.float32) * (1 - a) + np.array([0, 255, 0], np.float32) * a
    out = np.clip(out, 0, 255).astype(np.uint8)
    contours, _ = cv2.findContours((mask[:, :, 0] >= 128).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 255, 0), 1)
    return out


def grid(batches: list[dict], columns: int = 4, pad: int = 4) -> np.ndarray:
    """Batches of stills (B, H, W, C) -> rows of ``columns`` tiles; batches of clips (B, T, H, W, C) -> one
    row per clip with its T frames. Padded (valid=False) examples are left out. -> (rows*H', cols*W', 3)."""
    rows: list[list[np.ndarray]] = []
    tiles: list[np.ndarray] = []
    for b in batches:
        valid = b.get("valid", np.ones(len(b["image"]), bool))
        for img, msk, ok in zip(b["image"], b["mask"], valid):
            if not ok:
                continue
            if img.ndim == 4:
                rows.append([overlay(f, m) for f, m in zip(img, msk)])
            else:
                tiles.append(overlay(img, msk))
    rows += [tiles[i:i + columns] for i in range(0, len(tiles), columns)]
    if not rows:
        raise ValueError("nothing to show")
    h, w = rows[0][0].shape[:2]
    ncol = max(len(r) for r in rows)
    canvas = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        for j, tile in enumerate(r):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            canvas[y:y + h, x:x + w] = tile
    return canvas


def write_preview(config, out: str, split: str = "train", subset: str | None = None, batches: int = 1,
                  seed: int | None = None) -> np.ndarray:
    """Render ``batches`` batches of ``split`` to the PNG ``out``; returns the grid (rows, cols, 3) RGB."""
    if split == "train":
        it = data.build_train_iterator(config, seed=config.seed if seed is None else seed)
        got = [next(it) for _ in range(batches)]
    else:
        gen = data.build_eval_batches(config, split=split, subset=subset)
        got = [b for b, _ in zip(gen, range(batches))]
    canvas = grid(got)
    if not cv2.imwrite(out, canvas[:, :, ::-1]):
        raise OSError(f"{out}: could not write the PNG (does the folder exist?)")
    return canvas


def main(argv):
    del argv
    write_preview(_CONFIG.value, _OUT.value, _SPLIT.value, _SUBSET.value, _BATCHES.value, _SEED.value)
    print(f"wrote {_OUT.value}")


if __name__ == "__main__":
    flags.mark_flag_as_required("config")
    app.run(main)
