"""YouTube-VIS 2019 person tracks from TFDS ``youtube_vis/480_640_only_frames_with_labels`` (manual download).

The builder stores one record per video: its labelled frames (every 5th of the original, resized to 480x640) and
its object tracks, each with a category, an ``is_crowd`` flag, the frame indices it appears on and one mask per
such frame. Here a frame's mask is the union of its non-crowd ``person`` tracks; crowd ``person`` tracks are
ignored (as in :mod:`seg_jax.data.public.coco`); every other category is background. Only videos with a person
track are used; the builder's val / test splits have no labels, so YouTube-VIS is a training source only.

The builder declares its videos with TFDS's ``Video`` feature, whose construction needs TensorFlow; the records
are read here as plain sequences of encoded frames (:class:`~seg_jax.data.public.store.RawSplit`), which is how
``Video`` stores them, so reading stays TensorFlow-free. Which videos have people, and their frame counts, are
read once at prepare time into ``seg_jax_index.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from seg_jax.data import io
from seg_jax.data.public import store, videos

NAME = "youtube_vis"
PERSON = "person"


def _features(with_frames: bool):
    """The keys read, in stored form. Every nested (ragged) track sequence of the builder is declared, the unused
    ``bboxes`` and ``areas`` too: TFDS's NumPy parser fails on a ragged key that the spec leaves out (it skips only
    plain ones)."""
    import tensorflow_datasets as tfds
    track = {"category": np.int64, "is_crowd": np.bool_, "segmentations": tfds.features.Sequence(store.encoded()),
             "frames": tfds.features.Sequence(np.int32),
             "bboxes": tfds.features.Sequence(tfds.features.Tensor(shape=(4,), dtype=np.float32)),
             "areas": tfds.features.Sequence(np.float32)}
    keys = {"metadata": {"num_frames": np.int32, "video_name": np.str_}, "tracks": tfds.features.Sequence(track)}
    if with_frames:
        keys["video"] = tfds.features.Sequence(store.encoded())
    return tfds.features.FeaturesDict(keys)


def person_label(vdir: Path) -> int:
    names = store.label_file_names(vdir, "tracks/category")
    if PERSON not in names:
        raise store.PublicDataError(f"{vdir}: no {PERSON!r} category; not YouTube-VIS data")
    return names.index(PERSON)


def build_index(vdir: Path) -> dict:
    """-> {'person_label': int, 'splits': {'train': {'records': [records with a person track], 'names': [...],
    'frames': [frame counts]}}}."""
    label = person_label(vdir)
    out = {"person_label": label, "splits": {}}
    for split in store.spec(NAME)["splits"].values():
        src = store.RawSplit(vdir, split, _features(with_frames=False))
        part = {"records": [], "names": [], "frames": []}
        for i in range(len(src)):
            ex = src[i]
            if np.any(np.asarray(ex["tracks"]["category"], np.int64) == label):
                name = ex["metadata"]["video_name"]
                part["records"].append(i)
                part["names"].append(name.decode() if isinstance(name, bytes) else str(name))
                part["frames"].append(int(ex["metadata"]["num_frames"]))
        out["splits"][split] = part
    return out


class YoutubeVisVideos:
    """The videos of a split that show a person; ``frames(k, indices)`` -> {'image': (T, H, W, 3), 'mask': (T, H, W,
    1), 'ignore': (T, H, W, 1)} uint8."""

    has_ignore = True

    def __init__(self, vdir: Path, split: str):
        index = store.read_index(vdir)
        tfds_split = store.spec(NAME)["splits"][split]
        part = index["splits"][tfds_split]
        self.label = int(index["person_label"])
        self.records, self.names, self.lengths = part["records"], part["names"], part["frames"]
        self.raw = store.RawSplit(vdir, tfds_split, _features(with_frames=True))

    def frames(self, k: int, indices) -> dict:
        ex = self.raw[self.records[k]]
        name = self.names[k]
        tracks = ex["tracks"]
        images, masks, ignores = [], [], []
        for t in indices:
            where = f"youtube_vis:{name}:{t}"
            image = io.image_from_array(io.decode(ex["video"][t], where), where)
            mask = np.zeros(image.shape[:2], bool)
            ignore = np.zeros(image.shape[:2], bool)
            for j, category in enumerate(np.asarray(tracks["category"], np.int64)):
                on = list(np.asarray(tracks["frames"][j]))
                if category != self.label or t not in on:
                    continue
                seg = io.decode(tracks["segmentations"][j][on.index(t)], where + ":mask")
                seg = seg.reshape(seg.shape[0], seg.shape[1], -1)[:, :, 0] > 0
                if seg.shape != mask.shape:
                    raise io.BadInputError(f"{where}: track mask {seg.shape} does not match the frame {mask.shape}")
                if bool(tracks["is_crowd"][j]):
                    ignore |= seg
                else:
                    mask |= seg
            images.append(image)
            masks.append((mask.astype(np.uint8) * 255)[:, :, None])
            ignores.append(((ignore & ~mask).astype(np.uint8) * 255)[:, :, None])
        return {"image": np.stack(images), "mask": np.stack(masks), "ignore": np.stack(ignores)}


def YoutubeVisClips(vdir: Path, split: str, clip_length: int, stride: int = 1,
                    cover: bool = False) -> videos.VideoClips:
    return videos.VideoClips(YoutubeVisVideos(vdir, split), clip_length, stride, cover)


def YoutubeVisFrames(vdir: Path, split: str) -> videos.VideoFrames:
    return videos.VideoFrames(YoutubeVisVideos(vdir, split))
