"""Tiny TFDS datasets in the feature layouts of coco/2017_panoptic, davis/480p and youtube_vis (as the TFDS
builders of tensorflow-datasets 4.9 declare them), built as ArrayRecord without TensorFlow, for the public-data
tests. Each ``make_*`` writes ``<data_dir>/<name>/<config>/<version>/`` exactly where the real prepare step does.

Images are PNG bytes (encoding arrays would need TensorFlow). Sizes are tiny (32-48 px).
"""
from __future__ import annotations

import cv2
import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils


def png(a: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", a[..., ::-1] if a.ndim == 3 and a.shape[2] == 3 else a)
    assert ok
    return buf.tobytes()


class _Fixture(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    EXAMPLES: dict = {}

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(__file__)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split) for split in self.EXAMPLES}

    def _generate_examples(self, split):
        yield from self.EXAMPLES[split]


# -- COCO panoptic -------------------------------------------------------------------------------------------------
COCO_LABELS = ["person", "bicycle", "car", "giraffe"]   # the real builder has 133; 'person' is not assumed first


def panoptic_png(ids: np.ndarray) -> np.ndarray:
    """(H, W) segment ids -> the panoptic PNG's RGB (id = R + 256 G + 256^2 B)."""
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536], -1).astype(np.uint8)


def coco_example(k: int, segments: list[tuple[int, str, bool, tuple]], hw=(32, 48)) -> tuple[str, dict]:
    """segments: (segment id, label, is_crowd, (y0, y1, x0, x1) box filled with that id)."""
    ids = np.zeros(hw, np.int64)
    for sid, _, _, (y0, y1, x0, x1) in segments:
        ids[y0:y1, x0:x1] = sid
    rng = np.random.default_rng(k)
    image = rng.integers(0, 255, hw + (3,), dtype=np.uint8)
    objects = [{"id": sid, "area": int((ids == sid).sum()), "bbox": tfds.features.BBox(0.0, 0.0, 1.0, 1.0),
                "label": label, "is_crowd": crowd} for sid, label, crowd, _ in segments]
    name = f"{k:012d}"
    return name + ".jpg", {"image": png(image), "image/filename": name + ".jpg", "image/id": k,
                           "panoptic_image": png(panoptic_png(ids)), "panoptic_image/filename": name + ".png",
                           "panoptic_objects": objects}


class FakeCoco(_Fixture, skip_registration=True):
    name = "coco"
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="2017_panoptic", version=tfds.core.Version("1.1.0"))]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(encoding_format="png"),
            "image/filename": tfds.features.Text(),
            "image/id": np.int64,
            "panoptic_image": tfds.features.Image(encoding_format="png"),
            "panoptic_image/filename": tfds.features.Text(),
            "panoptic_objects": tfds.features.Sequence({
                "id": np.int64, "area": np.int64, "bbox": tfds.features.BBoxFeature(),
                "label": tfds.features.ClassLabel(names=COCO_LABELS), "is_crowd": np.bool_}),
        }))


# Train: 0 person + car; 1 giraffe only (negative); 2 crowd of people + a person; 3 nothing annotated (negative);
# 4 bicycle + person. Val: 0 person; 1 car only.
COCO_TRAIN = [
    [(1, "person", False, (4, 20, 4, 16)), (2, "car", False, (20, 30, 20, 40))],
    [(7, "giraffe", False, (2, 30, 2, 30))],
    [(3, "person", True, (0, 10, 0, 48)), (4, "person", False, (12, 30, 10, 20))],
    [],
    [(300, "bicycle", False, (16, 30, 0, 20)), (70000, "person", False, (2, 16, 24, 40))],
]
COCO_VAL = [[(5, "person", False, (8, 24, 8, 24))], [(6, "car", False, (0, 10, 0, 10))]]


def make_coco(data_dir: str) -> None:
    FakeCoco.EXAMPLES = {"train": [coco_example(k, s) for k, s in enumerate(COCO_TRAIN)],
                         "validation": [coco_example(100 + k, s) for k, s in enumerate(COCO_VAL)]}
    FakeCoco(config="2017_panoptic", data_dir=data_dir, file_format="array_record").download_and_prepare()


# -- DAVIS 2017 -----------------------------------------------------------------------------------------------------
def davis_video(name: str, n: int, ids: tuple[int, ...], hw=(32, 32)) -> tuple[str, dict]:
    """Frame t: object id j fills column band j (width 6) shifted by t; id 0 is background."""
    frames, segs = [], []
    for t in range(n):
        seg = np.zeros(hw + (1,), np.uint8)
        for j, oid in enumerate(ids):
            x0 = (6 * j + t) % (hw[1] - 6)
            seg[:, x0:x0 + 6, 0] = oid
        frames.append(png(np.full(hw + (3,), 10 * t, np.uint8)))
        segs.append(png(seg[:, :, 0]))
    return name + "480p", {"video": {"frames": frames, "segmentations": segs},
                           "metadata": {"num_frames": n, "video_name": name}}


class FakeDavis(_Fixture, skip_registration=True):
    name = "davis"
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="480p", version=tfds.core.Version("2.1.0"))]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            "video": tfds.features.Sequence({
                "frames": tfds.features.Image(shape=(None, None, 3), encoding_format="png"),
                "segmentations": tfds.features.Image(shape=(None, None, 1), use_colormap=True,
                                                     encoding_format="png")}),
            "metadata": {"num_frames": np.int64, "video_name": np.str_},
        }))


# bmx-trees: 1 bicycle, 2 person; india: 1, 2, 3 persons; blackswan: 1 bird (no person); dance-twirl: 1 person
DAVIS_TRAIN = [("bmx-trees", 5, (1, 2)), ("india", 4, (1, 2, 3)), ("blackswan", 3, (1,))]
DAVIS_VAL = [("dance-twirl", 3, (1,))]


def make_davis(data_dir: str) -> None:
    FakeDavis.EXAMPLES = {"train": [davis_video(*v) for v in DAVIS_TRAIN],
                          "validation": [davis_video(*v) for v in DAVIS_VAL]}
    FakeDavis(config="480p", data_dir=data_dir, file_format="array_record").download_and_prepare()


# -- YouTube-VIS ----------------------------------------------------------------------------------------------------
YTVIS_LABELS = ["person", "giant_panda", "lizard", "parrot"]


def ytvis_video(name: str, n: int, tracks: list[tuple[str, bool, list[int]]], hw=(32, 32)) -> tuple[str, dict]:
    """tracks: (category, is_crowd, frames it appears on); track j fills rows 8j..8j+8 on its frames."""
    out_tracks = []
    for j, (category, crowd, on) in enumerate(tracks):
        segs = []
        for _ in on:
            seg = np.zeros(hw, np.uint8)
            seg[8 * j:8 * j + 8] = 1
            segs.append(png(seg))
        out_tracks.append({"bboxes": [tfds.features.BBox(0.0, 0.0, 1.0, 1.0)] * len(on), "segmentations": segs,
                           "category": category, "is_crowd": crowd, "areas": [64.0] * len(on), "frames": on})
    video = [png(np.full(hw + (3,), 20 * t, np.uint8)) for t in range(n)]
    return name, {"video": video, "metadata": {"height": hw[0], "width": hw[1], "num_frames": n, "video_name": name},
                  "tracks": out_tracks}


class FakeYoutubeVis(_Fixture, skip_registration=True):
    name = "youtube_vis"
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="480_640_only_frames_with_labels",
                                               version=tfds.core.Version("1.0.0"))]

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
            # TFDS's Video feature (which needs TensorFlow to construct) stores a Sequence of encoded Images
            "video": tfds.features.Sequence(tfds.features.Image(shape=(None, None, 3), encoding_format="png")),
            "metadata": {"height": np.int32, "width": np.int32, "num_frames": np.int32, "video_name": np.str_},
            "tracks": tfds.features.Sequence({
                "bboxes": tfds.features.Sequence(tfds.features.BBoxFeature()),
                "segmentations": tfds.features.Sequence(tfds.features.Image(
                    shape=(None, None, 1), use_colormap=True, encoding_format="png")),
                "category": tfds.features.ClassLabel(names=YTVIS_LABELS),
                "is_crowd": np.bool_,
                "areas": tfds.features.Sequence(np.float32),
                "frames": tfds.features.Sequence(np.int32)}),
        }))


# v0: a person on frames 0-3 (rows 0-8) and a panda on 0-3 (rows 8-16); v1: a lizard only; v2: a person on
# frames 1-2 of 3 (rows 0-8) and a crowd of people on frames 0-2 (rows 8-16)
YTVIS_TRAIN = [("v0", 4, [("person", False, [0, 1, 2, 3]), ("giant_panda", False, [0, 1, 2, 3])]),
               ("v1", 3, [("lizard", False, [0, 1, 2])]),
               ("v2", 3, [("person", False, [1, 2]), ("person", True, [0, 1, 2])])]


def make_youtube_vis(data_dir: str) -> None:
    """Writing a nested (ragged) sequence asks the deprecated ``TensorInfo.dtype`` for a TensorFlow dtype only to
    build the flat values' TensorInfo, which takes a NumPy dtype just as well: the NumPy dtype is given here while
    writing, so the records are the ones TensorFlow would write."""
    from tensorflow_datasets.core.features import feature as feature_lib
    FakeYoutubeVis.EXAMPLES = {"train": [ytvis_video(*v) for v in YTVIS_TRAIN]}
    original = feature_lib.TensorInfo.dtype
    feature_lib.TensorInfo.dtype = property(lambda self: self.np_dtype)
    try:
        FakeYoutubeVis(config="480_640_only_frames_with_labels", data_dir=data_dir,
                       file_format="array_record").download_and_prepare()
    finally:
        feature_lib.TensorInfo.dtype = original
