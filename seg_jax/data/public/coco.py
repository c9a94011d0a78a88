"""COCO 2017 people from TFDS ``coco/2017_panoptic``: person masks, crowd regions ignored, person-free negatives.

The builder stores each image with its panoptic PNG (segment id = R + 256 G + 256^2 B per pixel) and the list of
its segments (``panoptic_objects``: id, label, is_crowd, ...). Here:

- mask = 255 where the pixel's segment is a ``person`` segment that is not a crowd, else 0: every other category
  (giraffe, horse, bus, ...) and unlabelled pixels are background;
- ignore = 255 where the segment is a ``person`` crowd (``is_crowd``): one segment covering a group of people, gaps
  between them included. Calling it person would teach blobs over the gaps; calling it background would teach
  the network to miss real people; so those pixels count in neither the loss nor the metrics. Crowds of other
  categories are background like any other non-person segment.
- images with no person segment at all are negatives (all-zero mask); they are a separate source
  (``coco_negatives``) so their share of the mix is set by its own weight.

Which images have people is read once, when the dataset is prepared, into ``seg_jax_index.json`` beside the TFDS
files (:func:`build_index`), so a training run starts without scanning 118k records.
"""
from __future__ import annotations

import collections
from pathlib import Path

import numpy as np

from seg_jax.data import io
from seg_jax.data.public import store

NAME = "coco"
PERSON = "person"


def _features(with_images: bool):
    import tensorflow_datasets as tfds
    objects = tfds.features.Sequence({"id": np.int64, "label": np.int64, "is_crowd": np.bool_})
    keys = {"panoptic_objects": objects}
    if with_images:
        keys.update({"image": store.encoded(), "panoptic_image": store.encoded()})
    return tfds.features.FeaturesDict(keys)


def person_label(vdir: Path) -> int:
    names = store.label_file_names(vdir, "panoptic_objects/label")
    if PERSON not in names:
        raise store.PublicDataError(f"{vdir}: no {PERSON!r} class among the panoptic labels; not COCO panoptic data")
    return names.index(PERSON)


def build_index(vdir: Path) -> dict:
    """Scan every record's segment list (images left encoded) -> {'person_label': int, 'splits': {split:
    {'people': [record indices with a person segment], 'negatives': [record indices without]}}}."""
    label = person_label(vdir)
    out = {"person_label": label, "splits": {}}
    for split in store.spec(NAME)["splits"].values():
        src = store.RawSplit(vdir, split, _features(with_images=False))
        people, negatives = [], []
        for i in range(len(src)):
            labels = np.asarray(src[i]["panoptic_objects"]["label"], np.int64)
            (people if np.any(labels == label) else negatives).append(i)
        out["splits"][split] = {"people": people, "negatives": negatives}
    return out


def segment_ids(panoptic_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB panoptic PNG -> (H, W) int64 segment ids."""
    p = panoptic_rgb.astype(np.int64)
    return p[..., 0] + 256 * p[..., 1] + 65536 * p[..., 2]


def person_masks(ids: np.ndarray, objects: dict, label: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment ids (H, W) + the segment list -> (mask, ignore), uint8 (H, W, 1) each, 0 / 255 (module docstring)."""
    seg = np.asarray(objects["id"], np.int64)
    labels = np.asarray(objects["label"], np.int64)
    crowd = np.asarray(objects["is_crowd"], bool)
    person = labels == label
    mask = np.isin(ids, seg[person & ~crowd])
    ignore = np.isin(ids, seg[person & crowd])
    to_u8 = lambda m: (m.astype(np.uint8) * 255)[:, :, None]  # noqa: E731
    return to_u8(mask), to_u8(ignore)


class CocoPeople:
    """Random-access COCO examples of one split: {'image': uint8 (H, W, 3), 'mask': uint8 (H, W, 1),
    'ignore': uint8 (H, W, 1)} at the photo's resolution. ``kind`` 'people' | 'negatives' | 'all'."""

    has_ignore = True

    def __init__(self, vdir: Path, split: str, kind: str = "people", limit: int = 0):
        index = store.read_index(vdir)
        self.label = int(index["person_label"])
        tfds_split = store.spec(NAME)["splits"][split]
        parts = index["splits"][tfds_split]
        if kind == "all":
            self.records = sorted(parts["people"] + parts["negatives"])
        elif kind in parts:
            self.records = list(parts[kind])
        else:
            raise ValueError(f"unknown COCO kind {kind!r}; choose people | negatives | all")
        if limit and len(self.records) > limit:   # evenly spaced, deterministic
            self.records = [self.records[int(k)] for k in np.linspace(0, len(self.records) - 1, limit)]
        self.kind, self.split = kind, split
        self.raw = store.RawSplit(vdir, tfds_split, _features(with_images=True))
        self.stats: collections.Counter = collections.Counter()

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        ex = self.raw[record]
        name = f"coco:{self.split}:{record}"
        image = io.image_from_array(io.decode(ex["image"], name), name, self.stats)
        panoptic = io.decode(ex["panoptic_image"], name + ":panoptic")
        if panoptic.ndim != 3 or panoptic.shape[:2] != image.shape[:2]:
            raise io.BadInputError(f"{name}: panoptic PNG {panoptic.shape} does not match the image {image.shape}")
        mask, ignore = person_masks(segment_ids(panoptic[:, :, 2::-1]), ex["panoptic_objects"], self.label)
        return {"image": image, "mask": mask, "ignore": ignore}

    def __repr__(self) -> str:
        return f"CocoPeople({self.split}, {self.kind}, n={len(self)})"
