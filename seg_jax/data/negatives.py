"""Hard negatives: real photos with no person in them (``<data.root>/negatives/``, see its README).

Layout: ``negatives/<kind>/images/*.jpg`` for each kind of :data:`KINDS`; ``animals/`` also has
``object_masks/<stem>.png`` (255 = the animal). Every image's person mask is all zero. Three uses, each behind a
config weight (:mod:`seg_jax.data.real`): whole images with an empty mask (:class:`NegativeImageSource`),
the masked objects cut out and pasted into composites as non-person layers (:func:`negative_objects`), and the
photos as composite backgrounds (:func:`negative_images`).

The split is FIXED and written in ``negatives_splits.json`` beside this module by
``python -m seg_jax.data.negatives --data_root ../shared/data --write_splits``: per kind, the val and test stems
(animals: whole sequences, the stem's part before its last ``_``, so no frame of a held-out sequence trains).
Train is every image not held out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from seg_jax.common.writer import write_text
from seg_jax.data import clips, composite, folder, io

KINDS = ("objects", "rooms", "animals")
SEQUENCE_KINDS = ("animals",)          # video frames: split by sequence, not by frame
SPLIT_FRACTIONS = {"val": 0.1, "test": 0.2}
SPLITS_FILE = os.path.join(os.path.dirname(__file__), "negatives_splits.json")


def _kind_dir(root: str, kind: str) -> str:
    path = os.path.join(root, "negatives", kind, "images")
    if not os.path.isdir(path):
        raise io.BadInputError(f"{path}: folder missing; data.root needs negatives/{{{','.join(KINDS)}}}/images "
                               "(see ../shared/data/negatives/README.md), or set data.weights.negative=0, "
                               "data.negatives.background_share=0 and data.negatives.object_prob=0")
    return path


def _group(kind: str, stem: str) -> str:
    return stem.rsplit("_", 1)[0] if kind in SEQUENCE_KINDS else stem


def list_stems(root: str, kind: str) -> dict[str, str]:
    """stem -> image path of every decodable-looking image of one kind (sorted by stem)."""
    return clips.images_by_stem(_kind_dir(root, kind))


def make_splits(root: str) -> dict[str, dict[str, list[str]]]:
    """The held-out val / test groups of each kind, by SHA-1 order of the group name (at least one each)."""
    out = {}
    for kind in KINDS:
        groups = sorted({_group(kind, s) for s in list_stems(root, kind)})
        parts = folder.hash_split(groups, SPLIT_FRACTIONS["val"], SPLIT_FRACTIONS["test"])
        for split in ("test", "val"):
            if not parts[split] and len(parts["train"]) > 1:
                parts[split] = [parts["train"].pop(0)]
        out[kind] = {"val": sorted(parts["val"]), "test": sorted(parts["test"])}
    return out


def load_splits(path: str = SPLITS_FILE) -> dict[str, dict[str, list[str]]]:
    with open(path) as f:
        return json.load(f)


def _in_split(kind: str, stem: str, split: str, splits: dict) -> bool:
    group = _group(kind, stem)
    held = splits.get(kind, {"val": [], "test": []})
    if split == "train":
        return group not in held["val"] and group not in held["test"]
    return group in held[split]


def negative_images(root: str, split: str, kinds=KINDS, splits: dict | None = None) -> list[str]:
    """Image paths of the person-free photos of ``kinds`` in ``split`` ('train' | 'val' | 'test'), sorted."""
    if split not in folder.SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {folder.SPLITS}")
    splits = load_splits() if splits is None else splits
    out = []
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"unknown negatives kind {kind!r}; choose from {KINDS}")
        out += [p for s, p in list_stems(root, kind).items() if _in_split(kind, s, split, splits)]
    return out


def object_mask_path(image_path: str) -> str:
    """``.../animals/images/x.jpg`` -> ``.../animals/object_masks/x.png``."""
    kind_dir = os.path.dirname(os.path.dirname(image_path))
    return os.path.join(kind_dir, "object_masks", os.path.splitext(os.path.basename(image_path))[0] + ".png")


def negative_objects(root: str, split: str = "train", splits: dict | None = None) -> list[composite.Foreground]:
    """Masked non-person objects of ``split`` (animals) as compositing layers; an image without its mask is a
    one-line error naming both files."""
    out = []
    for path in negative_images(root, split, SEQUENCE_KINDS, splits):
        mask = object_mask_path(path)
        if not os.path.isfile(mask):
            raise io.BadInputError(f"{path}: no object mask at {mask}; every image of negatives/animals needs "
                                   "one (or remove the image)")
        out.append(composite.Foreground(path, mask))
    return out


class NegativeImageSource(folder.PairSource):
    """Random-access person-free photos: ``source[i]`` -> {'image': uint8 (H, W, 3), 'mask': zeros (H, W, 1)}.

    The mask is all zero by definition of the folder. Where an object mask exists (animals) it is read and must
    fit its image (same size, or the same aspect ratio): a mask of another shape means the files are mixed up.
    An undecodable image is skipped (counted, warned once) for the next, as in :class:`folder.PairSource`.
    """

    def __init__(self, paths: list[str], name: str = "negatives"):
        if not paths:
            raise io.BadInputError(f"{name}: no person-free images; check data.root/negatives")
        super().__init__([folder.Pair(os.path.splitext(os.path.basename(p))[0], p, object_mask_path(p))
                          for p in paths], name)

    @property
    def paths(self) -> list[str]:
        return [p.image_path for p in self.pairs]

    def _read(self, pair: folder.Pair) -> dict:
        image = io.read_image(pair.image_path, self.stats)
        if os.path.isfile(pair.mask_path):
            io.read_mask(pair.mask_path, image.shape[:2], self.stats)   # raises on a mask that is not this image's
        return {"image": image, "mask": np.zeros(image.shape[:2] + (1,), np.uint8)}

    def __repr__(self) -> str:
        return f"NegativeImageSource({self.name!r}, n={len(self.pairs)})"


def heldout_files(root: str, split: str) -> list[dict]:
    """The held-out person-free photos in evaluation order: [{'name', 'image_path', 'mask_path': '',
    'sequence': ''}] (an empty mask path means an all-zero person mask)."""
    return [{"name": os.path.relpath(p, root), "image_path": p, "mask_path": "", "sequence": ""}
            for p in negative_images(root, split)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seg_jax.data.negatives", description=__doc__.split("\n")[0])
    parser.add_argument("--data_root", default="../shared/data", help="folder holding negatives/")
    parser.add_argument("--write_splits", nargs="?", const=SPLITS_FILE, default=None,
                        help=f"write the held-out split JSON (default path {SPLITS_FILE})")
    args = parser.parse_args(argv)
    try:
        splits = make_splits(args.data_root)
    except io.BadInputError as e:
        print(f"seg_jax.data.negatives: error: {e}", file=sys.stderr)
        return 2
    for kind in KINDS:
        n = len(list_stems(args.data_root, kind))
        print(f"{kind}: {n} images; val groups {len(splits[kind]['val'])}, test groups {len(splits[kind]['test'])}")
    if args.write_splits:
        write_text(args.write_splits, json.dumps(splits, indent=1, sort_keys=True) + "\n", option="--write_splits")
        print(f"wrote {args.write_splits}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
