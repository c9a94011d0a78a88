"""TFDS builder ``person_segmentation`` (manual download), written as ArrayRecord, read without TensorFlow.

Reads from ``manual_dir`` the Kaggle Person Segmentation layout (``people_segmentation/images/*.jpg``,
``people_segmentation/masks/*.png``, optional ``segmentation/{train,val,test}.txt``) or a plain ``images/`` +
``masks/`` folder; without split files the deterministic 80:10:10 split of :mod:`seg_jax.data.folder` is used.
Bad files are skipped and counted as in the folder source; the counts are logged.

Examples are ``{'image': uint8 (H, W, 3), 'mask': uint8 (H, W, 1), 'name': str}``. The generator yields PNG
bytes (``cv2.imencode``), never arrays: encoding arrays would need TensorFlow. TFDS does not check encoded
bytes against the declared shape, so :func:`_encode_example` checks the shapes itself.

Building and reading both work WITHOUT TensorFlow (tested in ``tests/test_data_tfds.py`` in an environment
that has no TensorFlow installed)::

    from seg_jax.data import tfds_person_segmentation as tps
    tps.build(manual_dir="/path/to/kaggle", data_dir="/tmp/tfds")
    source = tps.data_source(data_dir="/tmp/tfds", split="train")   # random access, grain-compatible
    ex = source[0]  # {'image', 'mask', 'name'}
"""
from __future__ import annotations

import collections
import logging

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils

from seg_jax.data import folder, io

_DESCRIPTION = "Person segmentation pairs (image + 0..255 mask) from a local images/ + masks/ folder."


class PersonSegmentation(tfds.core.GeneratorBasedBuilder):
    """Person segmentation from a manual folder (Kaggle layout or images/ + masks/)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Place the Kaggle 'Person Segmentation' data (people_segmentation/images, people_segmentation/masks, "
        "optional segmentation/{train,val,test}.txt) or any images/ + masks/ folder in manual_dir.")

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        # TFDS 4.9.10's default touches `importlib_resources`, which it only installs for Python < 3.9.
        return epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self, description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                "mask": tfds.features.Image(shape=(None, None, 1), encoding_format="png"),
                "name": tfds.features.Text(),
            }),
            supervised_keys=("image", "mask"))

    def _split_generators(self, dl_manager):
        root = str(dl_manager.manual_dir)
        return {split: self._generate_examples(root, split) for split in folder.SPLITS}

    def _generate_examples(self, root: str, split: str):
        stats: collections.Counter = collections.Counter()
        for pair in folder.split_pairs(root, split, 0.1, 0.1, stats):
            try:
                ex = io.read_pair(pair.image_path, pair.mask_path, stats)
            except io.BadInputError as e:
                stats["skipped_undecodable"] += 1
                logging.warning("person_segmentation: skipping %s", e)
                continue
            yield pair.stem, _encode_example(ex, pair.stem)
        counts = {k: v for k, v in stats.items() if not k.startswith("examples:") and v}
        logging.info("person_segmentation[%s]: %s", split, counts)


def _encode_example(ex: dict, name: str) -> dict:
    image, mask = ex["image"], ex["mask"]
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if mask.dtype != np.uint8 or mask.shape != image.shape[:2] + (1,):
        raise ValueError(f"{name}: mask must be uint8 {image.shape[:2] + (1,)}, got {mask.dtype} {mask.shape}")
    return {"image": io.encode_png(image), "mask": io.encode_png(mask[:, :, 0]), "name": name}


def build(manual_dir: str, data_dir: str) -> PersonSegmentation:
    """Build (once) the ArrayRecord files of all three splits under ``data_dir``."""
    builder = PersonSegmentation(data_dir=data_dir, file_format="array_record")
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


class _Squeeze:
    """Wrap a TFDS data source: decoded examples -> {'image': (H, W, 3), 'mask': (H, W, 1)} uint8."""

    def __init__(self, source):
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        ex = self.source[index]
        name = ex["name"].decode() if isinstance(ex["name"], bytes) else str(ex["name"])
        return {"image": np.asarray(ex["image"]), "mask": np.asarray(ex["mask"]).reshape(ex["image"].shape[:2] + (1,)),
                "name": name}

    def __repr__(self) -> str:
        return f"TFDSPersonSegmentation(n={len(self)})"


def data_source(data_dir: str, split: str):
    """Random-access source of a built split (no TensorFlow needed): ``source[i]`` -> image, mask, name."""
    builder = PersonSegmentation(data_dir=data_dir, file_format="array_record")
    return _Squeeze(builder.as_data_source(split=split))
