"""DAVIS 2017 person tracks from TFDS ``davis/480p``: each frame's mask is the union of the objects that are people.

The builder stores one record per video: its frames (JPEG) and per-frame object-id maps (PNG, 0 = background,
1..N = the video's objects), but not what each object is. Which ids are people comes from DAVIS's own semantics
list, shipped as package data in ``davis_person_ids.json`` (``{sequence: [person object ids]}``, how it was made
in its ``_source``); a sequence the table does not list is refused rather than guessed.

The sequences that seg_jax's fixed held-out split keeps for val / test (``heldout_splits.json``, DAVIS-2016 names
that DAVIS 2017 reuses) are never trained on.

Clips and frames by index arithmetic (:mod:`seg_jax.data.public.videos`); a clip decodes only its own T frames.
Per-video frame counts are read once at prepare time into ``seg_jax_index.json``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from seg_jax.data import io
from seg_jax.data.public import store, videos
from seg_jax.data.real import HELDOUT

NAME = "davis17"
with open(Path(__file__).parent / "davis_person_ids.json") as _f:
    PERSON_IDS: dict[str, list[int]] = json.load(_f)["person_ids"]


def _features(with_frames: bool):
    import tensorflow_datasets as tfds
    keys = {"metadata": {"num_frames": np.int64, "video_name": np.str_}}
    if with_frames:
        keys["video"] = tfds.features.Sequence({"frames": store.encoded(), "segmentations": store.encoded()})
    return tfds.features.FeaturesDict(keys)


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def build_index(vdir: Path) -> dict:
    """-> {'splits': {split: {'names': [video per record], 'frames': [frame count per record]}}}; refuses a video
    that the person table does not list."""
    out = {"splits": {}}
    for split in store.spec(NAME)["splits"].values():
        src = store.RawSplit(vdir, split, _features(with_frames=False))
        metas = [src[i]["metadata"] for i in range(len(src))]
        names = [_name(m["video_name"]) for m in metas]
        unknown = [n for n in names if n not in PERSON_IDS]
        if unknown:
            raise store.PublicDataError(f"{vdir}: videos {unknown[:3]} are not in davis_person_ids.json; not DAVIS "
                                        "2017 data, or the table needs regenerating (see its _source)")
        out["splits"][split] = {"names": names, "frames": [int(m["num_frames"]) for m in metas]}
    return out


def person_mask(ids: np.ndarray, sequence: str) -> np.ndarray:
    """Object-id map (H, W) or (H, W, 1) of a frame of ``sequence`` -> uint8 (H, W, 1) mask, 255 on its people."""
    ids = ids.reshape(ids.shape[0], ids.shape[1])
    return (np.isin(ids, PERSON_IDS[sequence]).astype(np.uint8) * 255)[:, :, None]


def _heldout() -> set[str]:
    return {*HELDOUT["davis"]["val"], *HELDOUT["davis"]["test"]}


class DavisVideos:
    """The videos of one split (train minus seg_jax's held-out sequences) and their frame counts."""

    def __init__(self, vdir: Path, split: str):
        tfds_split = store.spec(NAME)["splits"][split]
        part = store.read_index(vdir)["splits"][tfds_split]
        held = _heldout() if split == "train" else set()
        self.records = [i for i, n in enumerate(part["names"]) if n not in held]
        self.names = [part["names"][i] for i in self.records]
        self.lengths = [part["frames"][i] for i in self.records]
        self.raw = store.RawSplit(vdir, tfds_split, _features(with_frames=True))

    def frames(self, k: int, indices) -> dict:
        """Frames ``indices`` of video ``k`` -> {'image': (T, H, W, 3), 'mask': (T, H, W, 1)} uint8."""
        video = self.raw[self.records[k]]["video"]
        name = self.names[k]
        images, masks = [], []
        for t in indices:
            where = f"davis17:{name}:{t}"
            images.append(io.image_from_array(io.decode(video["frames"][t], where), where))
            masks.append(person_mask(io.decode(video["segmentations"][t], where + ":mask"), name))
        return {"image": np.stack(images), "mask": np.stack(masks)}


def DavisClips(vdir: Path, split: str, clip_length: int, stride: int = 1, cover: bool = False) -> videos.VideoClips:
    """Clips of T frames: {'image': uint8 (T, H, W, 3), 'mask': uint8 (T, H, W, 1)}; every start for training,
    covering starts for evaluation (:func:`seg_jax.data.clips.clip_starts`)."""
    return videos.VideoClips(DavisVideos(vdir, split), clip_length, stride, cover)


def DavisFrames(vdir: Path, split: str) -> videos.VideoFrames:
    """Every frame of the split's videos as a still: {'image': (H, W, 3), 'mask': (H, W, 1)} uint8."""
    return videos.VideoFrames(DavisVideos(vdir, split))
