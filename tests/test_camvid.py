"""CamVid as a source (split by sequence from its data file, the ignore map honoured) and the label policy's
audited sources; every bad input is one line and nothing is read on a misaligned label."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from seg_jax.data import camvid, io

HW = (48, 64)
# the committed split's sequence ids, so the fake folder is read through camvid_splits.json itself
FRAMES = {"0001TP": 2, "0006R0": 1, "0016E5": 2, "Seq05VD": 2}


def _camvid(root, frames=FRAMES, small_people=None):
    """A tiny CamVid folder under ``root/camvid``: a 4x4 person at the top left (two in sequences listed in
    ``small_people``), an ignore band at the bottom."""
    base = root / "camvid"
    for kind in ("images", "masks", "ignore"):
        (base / kind).mkdir(parents=True, exist_ok=True)
    for seq, n in frames.items():
        for k in range(n):
            stem = f"camvid_{seq}_{k:06d}"
            cv2.imwrite(str(base / "images" / f"{stem}.jpg"), np.full(HW + (3,), 60 + 20 * k, np.uint8))
            mask = np.zeros(HW, np.uint8)
            mask[2:6, 2:6] = 255
            if small_people and seq in small_people:
                mask[2:6, 20:24] = 255
            cv2.imwrite(str(base / "masks" / f"{stem}.png"), mask)
            ignore = np.zeros(HW, np.uint8)
            ignore[-4:] = 255
            cv2.imwrite(str(base / "ignore" / f"{stem}.png"), ignore)
    return base


def test_split_file_is_data_with_its_command():
    got = json.load(open(camvid.SPLITS_FILE))
    splits = camvid.load_splits()
    assert splits["test"] == ["Seq05VD"]
    assert len(splits["val"]) == 1 and splits["val"][0] not in splits["train"] + splits["test"]
    assert "python -m seg_jax.data.camvid" in got["about"]["command"]


def test_read_split_by_sequence(tmp_path):
    _camvid(tmp_path)
    splits = camvid.load_splits()
    for split in camvid.SPLITS:
        got = camvid.read_split(str(tmp_path), split)
        assert len(got) == sum(FRAMES[q] for q in splits[split])
        assert {camvid.sequence_of(io_stem(i)) for i, _, _ in got} == set(splits[split])
        for image, mask, ignore in got:
            assert image.endswith(".jpg") and "/masks/" in mask and "/ignore/" in ignore
            assert io_stem(image) == io_stem(mask) == io_stem(ignore)
    # the CamVid folder itself is accepted as the root too
    assert camvid.read_split(str(tmp_path / "camvid"), "test") == camvid.read_split(str(tmp_path), "test")


def io_stem(path):
    import os
    return os.path.splitext(os.path.basename(path))[0]


def test_val_is_the_sequence_with_most_small_people(tmp_path):
    _camvid(tmp_path, small_people={"0006R0"})
    frames = dict(FRAMES, **{"0006R0": 3})
    _camvid(tmp_path, frames=frames, small_people={"0006R0"})
    got = camvid.choose_splits(str(tmp_path))
    assert got["test"] == ["Seq05VD"] and got["val"] == ["0006R0"]       # 3 frames x 2 people
    assert sorted(got["train"]) == ["0001TP", "0016E5"]
    assert got["about"]["small_people"]["0006R0"] == 6


def test_source_gives_the_ignore_map_and_training_leaves_it_out(tmp_path):
    import jax.numpy as jnp

    from seg_jax.configs import default
    from seg_jax.data import augment, build_eval_batches, real
    from seg_jax.training import steps
    _camvid(tmp_path)
    src = camvid.CamVidSource(str(tmp_path), "train")
    assert augment.carries_ignore(src) and len(src) == 3
    ex = src[0]
    assert ex["image"].shape == HW + (3,) and ex["mask"].shape == ex["ignore"].shape == HW + (1,)
    assert ex["ignore"][-4:].min() == 255 and not ex["ignore"][:-4].any()
    # a config trains on it by weight and scores it by subset, the ignore map in every batch
    c = default.get_default_config()
    c.data.root, c.data.image_size, c.eval_batch_size = str(tmp_path), (48, 64), 4
    val = real.subset_source(c, "val", real.CAMVID, temporal=False)
    assert len(val) == FRAMES[camvid.load_splits()["val"][0]]
    batch = next(iter(build_eval_batches(c, "val", real.CAMVID, temporal=False)))
    weights = np.asarray(steps.pixel_weights({k: jnp.asarray(v) for k, v in batch.items()}))
    assert weights.shape == batch["mask"].shape
    assert weights[:2, -4:].max() == 0 and weights[:2, :40].min() == 1    # the bottom band is left out


def test_a_frame_without_its_mask_is_one_line(tmp_path):
    base = _camvid(tmp_path)
    (base / "masks" / "camvid_0001TP_000001.png").unlink()
    with pytest.raises(io.BadInputError, match=r"camvid_0001TP_000001.jpg: CamVid frame without its mask") as e:
        camvid.read_split(str(tmp_path), "train")
    assert "\n" not in str(e.value)


def test_an_ignore_map_of_another_size_is_one_line_and_nothing_is_read(tmp_path):
    base = _camvid(tmp_path)
    cv2.imwrite(str(base / "ignore" / "camvid_0006R0_000000.png"), np.zeros((12, 16), np.uint8))
    with pytest.raises(io.BadInputError, match=r"ignore map is 16x12 but its image .* is 64x48") as e:
        camvid.CamVidSource(str(tmp_path), "train")
    assert "\n" not in str(e.value)
    camvid.CamVidSource(str(tmp_path), "test")          # the other splits' frames are fine


def test_a_split_sequence_missing_from_the_data_is_one_line(tmp_path):
    _camvid(tmp_path, frames={"0001TP": 1, "Seq05VD": 1})
    with pytest.raises(io.BadInputError, match="no frames of the val sequence"):
        camvid.read_split(str(tmp_path), "val")
    with pytest.raises(io.BadInputError, match="no CamVid folder"):
        camvid.read_split(str(tmp_path / "nowhere"), "val")


def _davis17(root):
    """A DAVIS-style folder with one 2-frame sequence (person on the right)."""
    seq = root / "davis17" / "walk"
    for kind in ("frames", "masks"):
        (seq / kind).mkdir(parents=True)
    for k in range(2):
        cv2.imwrite(str(seq / "frames" / f"{k:05d}.jpg"), np.full((20, 30, 3), 90, np.uint8))
        mask = np.zeros((20, 30), np.uint8)
        mask[:, 20:] = 255
        cv2.imwrite(str(seq / "masks" / f"{k:05d}.png"), mask)
    return root / "davis17"


def test_audited_video_frames_carry_the_missed_person_ignore_map(tmp_path):
    from seg_jax.configs import default
    from seg_jax.data import clips, real
    from seg_jax.data.ignore_masks import AuditedFrameSource
    _davis17(tmp_path / "data")
    audit = tmp_path / "audit" / "davis17" / "walk" / "frames"
    audit.mkdir(parents=True)
    flagged = np.zeros((20, 30), np.uint8)
    flagged[5:10, 2:8] = 255            # a bystander the label calls background
    flagged[5:10, 22:26] = 255          # the label's person (an extra_person region: not ignored)
    cv2.imwrite(str(audit / "00001.png"), flagged)
    c = default.get_default_config()
    c.data.label_audit.dir, c.data.label_audit.sources = str(tmp_path / "audit"), "people,davis17"
    src = real._davis17_frames(c, str(tmp_path / "data"))
    assert isinstance(src, AuditedFrameSource) and len(src) == 2
    assert not src[0]["ignore"].any()
    assert src[1]["ignore"].sum() == 255 * 30 and src[1]["ignore"][5:10, 2:8].min() == 255
    c.data.label_audit.sources = "people"
    assert isinstance(real._davis17_frames(c, str(tmp_path / "data")), clips.FrameSource)
    assert not isinstance(real._davis17_frames(c, str(tmp_path / "data")), AuditedFrameSource)


def test_an_audit_from_another_data_root_is_one_line(tmp_path):
    from seg_jax.data import clips, folder
    from seg_jax.data.ignore_masks import AuditedFrameSource, AuditedPairSource
    _davis17(tmp_path / "data")
    stale = tmp_path / "audit" / "davis17" / "dance" / "frames"      # a sequence this data root does not have
    stale.mkdir(parents=True)
    cv2.imwrite(str(stale / "00000.png"), np.zeros((20, 30), np.uint8))
    seqs = clips.list_davis(str(tmp_path / "data" / "davis17"))
    with pytest.raises(ValueError, match=r"1 ignore maps name no image of this data \(e.g. dance/frames/00000.png\); "
                                         "the audit was made from another data root") as e:
        AuditedFrameSource(seqs, "davis17", tmp_path / "audit")
    assert "\n" not in str(e.value)
    people = tmp_path / "data" / "people"
    for kind in ("images", "masks"):
        (people / kind).mkdir(parents=True)
    cv2.imwrite(str(people / "images" / "a.jpg"), np.full((20, 30, 3), 90, np.uint8))
    cv2.imwrite(str(people / "masks" / "a.png"), np.zeros((20, 30), np.uint8))
    (tmp_path / "audit" / "people" / "images").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "audit" / "people" / "images" / "a.png"), np.zeros((20, 30), np.uint8))
    AuditedPairSource(folder.list_pairs(str(people)), "people", tmp_path / "audit")      # names fit: fine
    cv2.imwrite(str(tmp_path / "audit" / "people" / "images" / "gone.png"), np.zeros((20, 30), np.uint8))
    with pytest.raises(ValueError, match="ignore maps name no image of this data"):
        AuditedPairSource(folder.list_pairs(str(people)), "people", tmp_path / "audit")
