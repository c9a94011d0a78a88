"""Folder sources: ``images/`` + ``masks/`` with matching file stems.

Layouts recognised under ``root``:
- ``root/images/*.jpg|png...`` + ``root/masks/*.png`` (stems match, extensions may differ);
- the Kaggle Person Segmentation layout ``root/people_segmentation/images`` + ``.../masks`` with optional split
  files ``segmentation/{train,val,test}.txt`` (one stem per line, extension optional) in ``root`` or in
  ``root/people_segmentation``.

Without split files the split is deterministic: stems ordered by SHA-1 of the stem, the first
``round(n * test_fraction)`` are test, the next ``round(n * val_fraction)`` val, the rest train (80:10:10 by
default). Membership depends only on the set of stems, never on listing order or the machine.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os

from seg_jax.data import io

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Pair:
    """One example on disk."""
    stem: str
    image_path: str
    mask_path: str


def find_layout(root: str) -> tuple[str, str, str | None]:
    """-> (images_dir, masks_dir, split_dir or None). Raises BadInputError naming ``root`` and the fix."""
    for base in (root, os.path.join(root, "people_segmentation")):
        images, masks = os.path.join(base, "images"), os.path.join(base, "masks")
        if os.path.isdir(images) and os.path.isdir(masks):
            split_dir = None
            for cand in (os.path.join(base, "segmentation"), os.path.join(root, "segmentation")):
                if os.path.isdir(cand):
                    split_dir = cand
                    break
            return images, masks, split_dir
    raise io.BadInputError(f"{root}: no images/ and masks/ folders (nor people_segmentation/images, masks); "
                           "point data.folder at a folder that has both")


def _stem(name: str) -> str:
    return os.path.splitext(name)[0]


def list_pairs(root: str, stats: collections.Counter | None = None) -> list[Pair]:
    """All usable (image, mask) pairs under ``root``, sorted by stem.

    Skipped and counted in ``stats`` (key -> count; ``stats['examples:<key>']`` keeps up to 3 file names):
    non-image files, zero-byte files, truncated files, images without a mask, masks without an image, and
    duplicate stems. An empty result raises BadInputError naming the folder.
    """
    stats = collections.Counter() if stats is None else stats
    images_dir, masks_dir, _ = find_layout(root)

    def usable(folder: str, kind: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if not os.path.isfile(path) or name.startswith("."):
                continue
            problem = ("not an image" if not name.lower().endswith(io.IMAGE_EXTENSIONS)
                       else io.check_file(path))
            if problem is None and _stem(name) in out:
                problem = "duplicate stem"
            if problem is not None:
                key = f"skipped_{kind}_{problem.replace(' ', '_').replace('-', '_')}"
                stats[key] += 1
                examples = stats.setdefault(f"examples:{key}", [])
                if len(examples) < 3:
                    examples.append(path)
                continue
            out[_stem(name)] = path
        return out

    images, masks = usable(images_dir, "image"), usable(masks_dir, "mask")
    stats["skipped_image_without_mask"] += len(images.keys() - masks.keys())
    stats["skipped_mask_without_image"] += len(masks.keys() - images.keys())
    missing = sorted(images.keys() - masks.keys())[:3]
    if missing:
        stats["examples:skipped_image_without_mask"] = [images[s] for s in missing]
    pairs = [Pair(s, images[s], masks[s]) for s in sorted(images.keys() & masks.keys())]
    if not pairs:
        raise io.BadInputError(f"{root}: no usable image/mask pairs (images in {images_dir}, masks with the same "
                               f"stem in {masks_dir}); add pairs or fix the folder path")
    skipped = {k: v for k, v in stats.items() if k.startswith("skipped") and v}
    if skipped:
        logging.warning("%s: %d pairs; skipped %s", root, len(pairs), skipped)
    return pairs


def _hash_order(stems: list[str]) -> list[str]:
    return sorted(stems, key=lambda s: hashlib.sha1(s.encode()).hexdigest())


def hash_split(stems: list[str], val_fraction: float, test_fraction: float) -> dict[str, list[str]]:
    """Deterministic split by SHA-1 order of the stems -> {'train', 'val', 'test'} lists of sorted stems."""
    order = _hash_order(stems)
    n_test = int(round(len(order) * test_fraction))
    n_val = int(round(len(order) * val_fraction))
    return {"test": sorted(order[:n_test]), "val": sorted(order[n_test:n_test + n_val]),
            "train": sorted(order[n_test + n_val:])}


def read_split_files(split_dir: str) -> dict[str, list[str]]:
    """``split_dir/{train,val,test}.txt`` -> stems per split. A missing file is an error naming it."""
    out = {}
    for split in SPLITS:
        path = os.path.join(split_dir, f"{split}.txt")
        if not os.path.isfile(path):
            raise io.BadInputError(f"{path}: split file missing; add it (one stem per line) or remove "
                                   f"{split_dir} to use the deterministic 80:10:10 split")
        with open(path) as f:
            out[split] = [_stem(os.path.basename(line.strip())) for line in f if line.strip()]
    return out


def split_pairs(root: str, split: str, val_fraction: float = 0.1, test_fraction: float = 0.1,
                stats: collections.Counter | None = None) -> list[Pair]:
    """The pairs of one split ('train' | 'val' | 'test' | 'all') of the folder at ``root``."""
    if split not in SPLITS + ("all",):
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS + ('all',)}")
    stats = collections.Counter() if stats is None else stats
    pairs = list_pairs(root, stats)
    if split == "all":
        return pairs
    by_stem = {p.stem: p for p in pairs}
    split_dir = find_layout(root)[2]
    if split_dir is not None:
        wanted = read_split_files(split_dir)[split]
        missing = [s for s in wanted if s not in by_stem]
        stats["split_stems_without_pair"] += len(missing)
        return [by_stem[s] for s in wanted if s in by_stem]
    return [by_stem[s] for s in hash_split(list(by_stem), val_fraction, test_fraction)[split]]


class PairSource:
    """Random-access source over a list of :class:`Pair`.

    ``source[i]`` -> {'image': uint8 (H, W, 3), 'mask': uint8 (H, W, 1)} at the image's own resolution (the
    mask is resized with nearest-neighbour when only its size differs). Conversions are counted in
    ``self.stats`` of the process that reads (each Grain worker has its own copy).
    """

    def __init__(self, pairs: list[Pair], name: str = "pairs"):
        self.pairs = list(pairs)
        self.name = name
        self.stats: collections.Counter = collections.Counter()

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        """The pair at ``index``; one that does not decode is skipped (counted, warned once) for the next."""
        n, first = len(self.pairs), None
        for k in range(n):
            p = self.pairs[(index + k) % n]
            try:
                return self._read(p)
            except io.BadInputError as e:
                io.skip_unreadable(p.image_path, e, self.stats)
                first = first or e
        raise io.BadInputError(f"{self.name}: none of its {n} pairs decodes (first: {first})")

    def _read(self, pair: Pair) -> dict:
        return io.read_pair(pair.image_path, pair.mask_path, self.stats)

    def __repr__(self) -> str:
        return f"PairSource({self.name!r}, n={len(self.pairs)})"
