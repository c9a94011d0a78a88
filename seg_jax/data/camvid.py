"""CamVid street frames (``<data root>/camvid/``, see its README): every pedestrian labelled, riders ignored.

Layout: ``images/camvid_<seq>_<frame>.jpg``, ``masks/<same stem>.png`` (person 0/255), ``ignore/<same stem>.png``
(0/255: pixels left out of the loss and every metric). Split by sequence (``camvid_splits.json`` beside this
module: {"train": [...], "val": [...], "test": ["Seq05VD"]}), never by frame.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from seg_jax.data import folder, io

SPLITS_FILE = os.path.join(os.path.dirname(__file__), "camvid_splits.json")
FOLDER = "camvid"

with open(SPLITS_FILE) as _f:
    SPLITS: dict[str, list[str]] = json.load(_f)


def sequence_of(stem: str) -> str:
    """'camvid_0001TP_006690' -> '0001TP'."""
    parts = stem.split("_")
    if len(parts) < 3 or parts[0] != FOLDER:
        raise io.BadInputError(f"{stem}: not a CamVid frame name (camvid_<sequence>_<frame>); "
                               "check the camvid/ folder of the data root")
    return "_".join(parts[1:-1])


def read_split(root: str, split: str) -> list[tuple[str, str, str]]:
    """The frames of ``split`` ('train' | 'val' | 'test') under ``<root>/camvid``, in name order.

    -> [(image_path, mask_path, ignore_path)]. A frame whose mask or ignore map is missing raises
    :class:`seg_jax.data.io.BadInputError` naming the file (nothing is scored or trained on without its mask).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown CamVid split {split!r}; choose one of {sorted(SPLITS)}")
    folder = os.path.join(root, FOLDER)
    images = os.path.join(folder, "images")
    if not os.path.isdir(images):
        raise io.BadInputError(f"{images}: folder missing; the data root must hold camvid/images, camvid/masks "
                               "and camvid/ignore (see ../shared/data/camvid/README.md)")
    wanted = set(SPLITS[split])
    out = []
    for name in sorted(os.listdir(images)):
        stem, ext = os.path.splitext(name)
        if ext.lower() not in io.IMAGE_EXTENSIONS or sequence_of(stem) not in wanted:
            continue
        paths = [os.path.join(folder, sub, stem + ".png") for sub in ("masks", "ignore")]
        for path in paths:
            if not os.path.isfile(path):
                raise io.BadInputError(f"{path}: missing for CamVid frame {name}; restore it or remove the frame")
        out.append((os.path.join(images, name), *paths))
    return out


def read_ignore(path: str, hw: tuple[int, int]) -> np.ndarray:
    """An ignore map -> uint8 (H, W, 1), 255 = left out. It must be exactly the image's size ``hw`` (no resizing:
    a map of another size does not belong to this frame): BadInputError naming the file and both sizes."""
    ignore = io.mask_from_array(io.decode(io.read_bytes(path), path), path, None)
    if ignore.shape[:2] != tuple(hw):
        raise io.BadInputError(f"{path}: ignore map is {ignore.shape[1]}x{ignore.shape[0]} but its image is "
                               f"{hw[1]}x{hw[0]}; it belongs to another image: restore the right file")
    return np.where(ignore >= 128, 255, 0).astype(np.uint8)


@dataclasses.dataclass(frozen=True)
class CamVidPair(folder.Pair):
    """A CamVid frame on disk: a :class:`seg_jax.data.folder.Pair` plus its ignore map."""
    ignore_path: str = ""


class CamVidSource(folder.PairSource):
    """The frames of one split: ``source[i]`` -> {'image' (H, W, 3), 'mask' (H, W, 1), 'ignore' (H, W, 1)} uint8."""
    has_ignore = True

    def __init__(self, root: str, split: str):
        pairs = [CamVidPair(os.path.splitext(os.path.basename(i))[0], i, m, g) for i, m, g in read_split(root, split)]
        super().__init__(pairs, f"camvid:{split}")

    def _read(self, pair: CamVidPair) -> dict:
        example = super()._read(pair)
        return {**example, "ignore": read_ignore(pair.ignore_path, example["image"].shape[:2])}


def heldout_files(root: str, split: str) -> list[dict]:
    """The held-out frames for full-resolution scoring: [{'name', 'image_path', 'mask_path', 'ignore_path',
    'sequence': ''}] (frames are about 1 s apart: scored as stills, no state carried)."""
    return [{"name": os.path.splitext(os.path.basename(i))[0], "image_path": i, "mask_path": m, "ignore_path": g,
             "sequence": ""} for i, m, g in read_split(root, split)]
