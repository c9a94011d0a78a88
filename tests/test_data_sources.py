"""Sources: compositing (exact masks, determinism), pseudo-video, clips, augmentations, real-data split, TFDS."""
import os

import cv2
import numpy as np
import pytest

from seg_jax import data
from seg_jax.configs import default
from seg_jax.data import augment, clips, composite, folder, io, pseudo_video, real, sources, synthetic


def _write(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), arr)


def _blob(hw, box):
    m = np.zeros(hw, np.uint8)
    y0, y1, x0, x1 = box
    m[y0:y1, x0:x1] = 255
    return m


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    """A tiny stand-in for ../shared/data with the held-out stems present."""
    root = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    for sub, extra in (("portraits", ["train_00001", "train_00002"]), ("people", ["1", "2", "3"]),
                       ("selfies", ["eg_train1", "aiseg_train2"]), ("fullbody", ["ccp_train1"])):
        for stem in real.HELDOUT[sub]["test"][:] + real.HELDOUT[sub]["val"] + extra:
            _write(root / sub / "images" / f"{stem}.jpg", rng.integers(0, 255, (24, 18, 3), dtype=np.uint8))
            mask = _blob((24, 18), (6, 24, 4, 14))
            if stem.startswith("aiseg"):
                mask[6:24, 4] = 100                       # a soft matte column
            _write(root / sub / "masks" / f"{stem}.png", mask)
    for i in range(2):
        rgba = np.zeros((30, 20, 4), np.uint8)
        rgba[..., :3] = 200
        rgba[5:30, 5:15, 3] = 255
        _write(root / "cutouts" / f"c{i}.png", rgba)
        _write(root / "backgrounds" / f"b{i}.jpg", rng.integers(0, 255, (36, 64, 3), dtype=np.uint8))
    for seq in [*real.HELDOUT["davis"]["test"], *real.HELDOUT["davis"]["val"], "hike", "swing"]:
        for t in range(5):
            _write(root / "davis" / seq / "frames" / f"{t:05d}.jpg", np.full((16, 28, 3), 20 * t, np.uint8))
            _write(root / "davis" / seq / "masks" / f"{t:05d}.png", _blob((16, 28), (2, 14, t, t + 8)))
    for t in range(5):
        _write(root / "davis17" / "girls" / "frames" / f"{t:05d}.jpg", np.full((16, 28, 3), 9 * t, np.uint8))
        _write(root / "davis17" / "girls" / "masks" / f"{t:05d}.png", _blob((16, 28), (4, 16, t, t + 6)))
    for kind, stems in (("objects", ["o1", "o2"]), ("rooms", ["r1", "r2"]), ("animals", ["cow_00000", "dog_00000"])):
        for stem in stems:
            _write(root / "negatives" / kind / "images" / f"{stem}.jpg", rng.integers(0, 255, (20, 30, 3), np.uint8))
            if kind == "animals":
                _write(root / "negatives" / kind / "object_masks" / f"{stem}.png", _blob((20, 30), (5, 15, 5, 20)))
    return str(root)


def _mixed_config(root, temporal=False):
    c = default.apply_variant(default.get_default_config(), "tiny")
    c.model.name = "convlstm" if temporal else "mobilenet"
    c.data.source, c.data.root, c.data.image_size = "mixed", root, (32, 32)
    c.data.augment = True
    return c


# ---------------------------------------------------------------- compositing

def _solid_layers():
    fg = np.zeros((40, 20, 3), np.uint8)
    fg[..., 0] = 250
    alpha = np.zeros((40, 20, 1), np.uint8)
    alpha[4:36, 3:17] = 255
    alpha[4:36, 3] = 120   # a soft edge column
    bg = np.zeros((60, 80, 3), np.uint8)
    bg[..., 2] = 240
    return fg, alpha, bg


def test_composite_mask_is_exact_alpha_of_blend():
    fg, alpha, bg = _solid_layers()
    for i in range(5):
        rng = np.random.default_rng(i)
        scene = composite.sample_scene(rng, [fg.shape[:2]], bg.shape[:2], (48, 48))
        image, mask = composite.render([(fg, alpha)], bg, scene, (48, 48), photometric=False)
        a = mask.astype(np.float32) / 255
        expected = a * np.array([250, 0, 0]) + (1 - a) * np.array([0, 0, 240])
        assert np.abs(image.astype(np.float32) - expected).max() <= 2.0    # 1/255 rounding of the mask
        assert (image[mask[..., 0] == 0] == [0, 0, 240]).all()             # no foreground where mask is 0
        assert mask.any()


def test_photometric_effects_change_image_not_mask():
    fg, alpha, bg = _solid_layers()
    scene = composite.sample_scene(np.random.default_rng(3), [fg.shape[:2]], bg.shape[:2], (48, 48))
    scene.update(light_wrap=0.5, blur=1.0, noise=5.0, bg_blur=1.0)
    img1, m1 = composite.render([(fg, alpha)], bg, scene, (48, 48), rng=np.random.default_rng(0))
    img0, m0 = composite.render([(fg, alpha)], bg, scene, (48, 48), photometric=False)
    np.testing.assert_array_equal(m0, m1)
    assert not np.array_equal(img0, img1)


def test_composite_source_deterministic(real_root):
    fgs, bgs = real.foregrounds(real_root), real.backgrounds(real_root)
    fgs, probs = fgs
    assert len(fgs) == 2 + 2 + 3 + 1 + 2    # train pairs of each still subset + cutouts (held-out excluded)
    assert abs(sum(probs) - 1) < 1e-9
    src = composite.CompositeSource(fgs, bgs, (32, 32), size=10, seed=5)
    a, b = src[3], composite.CompositeSource(fgs, bgs, (32, 32), size=10, seed=5)[3]
    assert a["image"].shape == (32, 32, 3) and a["mask"].shape == (32, 32, 1)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    assert not np.array_equal(a["image"], src[4]["image"])


def test_pseudo_video_moves_smoothly(real_root):
    src = composite.CompositeSource(real.foregrounds(real_root)[0], real.backgrounds(real_root), (32, 32), size=10,
                                    seed=0, clip_length=4)
    clip = src[1]
    assert clip["image"].shape == (4, 32, 32, 3) and clip["mask"].shape == (4, 32, 32, 1)
    assert not np.array_equal(clip["mask"][0], clip["mask"][-1])         # it moves
    path = pseudo_video.smooth_path(np.random.default_rng(0), 8, 5.0)
    assert np.abs(np.diff(path, 2)).max() < 1.0                           # smooth (bounded 2nd difference)


def test_camera_clip_keeps_image_and_mask_aligned():
    img = np.zeros((40, 60, 3), np.uint8)
    msk = np.zeros((40, 60, 1), np.uint8)
    img[10:30, 20:40] = 255
    msk[10:30, 20:40] = 255
    clip = pseudo_video.camera_clip({"image": img, "mask": msk}, 3, (32, 32), np.random.default_rng(0))
    np.testing.assert_array_equal(clip["image"][..., :1], clip["mask"])


# ---------------------------------------------------------------- clips

def test_clip_starts_and_index_arithmetic(real_root):
    assert clips.clip_starts(5, 2) == [0, 1, 2, 3]
    assert clips.clip_starts(5, 2, cover=True) == [0, 2, 3]
    assert clips.clip_starts(7, 3, stride=2) == [0, 1, 2]
    assert clips.clip_starts(7, 3, stride=2, cover=True) == [0, 2]
    assert clips.clip_starts(2, 3) == []
    seqs = clips.list_davis(os.path.join(real_root, "davis"))
    src = clips.ClipSource(seqs, 2)
    assert len(seqs) == 7 and len(src) == 7 * 4
    assert src.locate(0) == (0, 0) and src.locate(5) == (1, 1)
    clip = src[5]
    assert clip["image"].shape == (2, 16, 28, 3)
    assert clip["image"][0, 0, 0, 0] == 20 and clip["image"][1, 0, 0, 0] == 40     # ordered frames 1, 2


# ---------------------------------------------------------------- augmentations

def test_augment_consistent_across_frames():
    frame = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = _blob((32, 32), (4, 28, 8, 20))[..., None]
    clip = {"image": np.stack([frame] * 3), "mask": np.stack([mask] * 3)}
    probs = {k: 1.0 for k in augment.DEFAULT_PROBS}
    out = augment.paper_augment(clip, np.random.default_rng(1), probs)
    for t in (1, 2):
        np.testing.assert_array_equal(out["image"][t], out["image"][0])
        np.testing.assert_array_equal(out["mask"][t], out["mask"][0])
    single = augment.paper_augment({"image": frame, "mask": mask}, np.random.default_rng(1), probs)
    np.testing.assert_array_equal(single["image"], out["image"][0])   # a still = a clip of one frame


def test_each_augmentation():
    frame = np.random.default_rng(0).integers(1, 255, (64, 64, 3), dtype=np.uint8)
    mask = _blob((64, 64), (0, 64, 0, 32))[..., None]
    ex = {"image": frame, "mask": mask}
    off = {k: 0.0 for k in augment.DEFAULT_PROBS}
    f = augment.paper_augment(ex, np.random.default_rng(0), {**off, "flip": 1})
    np.testing.assert_array_equal(f["image"], frame[:, ::-1])
    np.testing.assert_array_equal(f["mask"], mask[:, ::-1])
    g = augment.paper_augment(ex, np.random.default_rng(0), {**off, "gray": 1})["image"]
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    s = augment.paper_augment(ex, np.random.default_rng(0), {**off, "channel_shuffle": 1})["image"]
    assert sorted(s.reshape(-1, 3).sum(0).tolist()) == sorted(frame.reshape(-1, 3).sum(0).tolist())
    d = augment.paper_augment(ex, np.random.default_rng(0), {**off, "dropout": 1})
    holes = (d["image"] == 0).all(-1)
    assert 0 < holes.sum() <= 10 * 8 * 8              # 64 px image -> holes up to 8x8
    np.testing.assert_array_equal(d["mask"], mask)
    r = augment.paper_augment(ex, np.random.default_rng(0), {**off, "rotate": 1})
    assert not np.array_equal(r["mask"], mask)
    rotated_area = int((r["mask"] >= 128).sum())
    assert abs(rotated_area - 64 * 32) < 0.3 * 64 * 32      # same person, turned (corners cut off)


# ---------------------------------------------------------------- real data layout and split

def test_real_heldout_split_is_fixed_and_disjoint(real_root):
    train = {p.stem for p in real.pairs(real_root, "people", "train")}
    test = {p.stem for p in real.pairs(real_root, "people", "test")}
    val = {p.stem for p in real.pairs(real_root, "people", "val")}
    assert train == {"1", "2", "3"} and len(test) == 40 and len(val) == len(real.HELDOUT["people"]["val"]) == 30
    assert not (train & test) and not (train & val) and not (val & test)
    assert [s.name for s in real.davis_sequences(real_root, "train")] == ["hike", "swing"]
    files = real.heldout_files(real_root, "test", "davis")
    assert len(files) == 10 and files[0]["sequence"] == "dance-twirl"
    assert len(real.heldout_files(real_root, "test", "portraits")) == 20


def test_mixed_pipeline_and_subsets(real_root):
    c = _mixed_config(real_root)
    batch = next(data.build_train_iterator(c, seed=0))
    assert batch["image"].shape == (2, 32, 32, 3)
    counts = {s: sum(int(b["valid"].sum()) for b in data.build_eval_batches(c, "test", subset=s))
              for s in real.SUBSETS}
    assert counts == {"portraits": 20, "selfies": 120, "people": 40, "fullbody": 80, "davis": 10}
    assert sum(int(b["valid"].sum()) for b in data.build_eval_batches(c, "val")) == 10 + 60 + 30 + 40 + 3 * 5
    ct = _mixed_config(real_root, temporal=True)
    clip = next(data.build_train_iterator(ct, seed=0))
    assert clip["image"].shape == (2, 2, 32, 32, 3)
    davis = list(data.build_eval_batches(ct, "test", subset="davis"))
    assert sum(int(b["valid"].sum()) for b in davis) == 2 * 3     # cover: starts 0, 2, 3 per sequence
    people = next(iter(data.build_eval_batches(ct, "test", subset="people")))
    np.testing.assert_array_equal(people["image"][:, 0], people["image"][:, 1])   # still -> repeated frames


def test_synthetic_clips_move():
    src = synthetic.SyntheticSource(2, (32, 32), clip_length=3)
    ex = src[0]
    assert ex["image"].shape == (3, 32, 32, 3)
    assert not np.array_equal(ex["mask"][0], ex["mask"][2])
    np.testing.assert_array_equal(src[1]["image"], synthetic.SyntheticSource(2, (32, 32), clip_length=3)[1]["image"])


# ---------------------------------------------------------------- TFDS

def test_tfds_builder_without_tensorflow(tmp_path):
    import sys

    from seg_jax.data import tfds_person_segmentation as tps
    base = tmp_path / "kaggle" / "people_segmentation"
    for i in range(10):
        _write(base / "images" / f"{i}.jpg", np.full((12, 16, 3), 10 * i, np.uint8))
        m = np.zeros((12, 16), np.uint8)
        m[2:10, 4:12] = 1                                     # Kaggle-style 0/1 mask
        _write(base / "masks" / f"{i}.png", m)
    tps.build(str(tmp_path / "kaggle"), str(tmp_path / "tfds"))
    sizes = {s: len(tps.data_source(str(tmp_path / "tfds"), s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 8, "val": 1, "test": 1}
    ex = tps.data_source(str(tmp_path / "tfds"), "train")[0]
    assert ex["image"].shape == (12, 16, 3) and ex["mask"].shape == (12, 16, 1)
    assert set(np.unique(ex["mask"])) == {0, 255}
    assert "tensorflow" not in sys.modules


def test_kaggle_split_files(tmp_path):
    base = tmp_path / "people_segmentation"
    for i in range(4):
        _write(base / "images" / f"{i}.jpg", np.zeros((8, 8, 3), np.uint8))
        _write(base / "masks" / f"{i}.png", _blob((8, 8), (0, 4, 0, 4)))
    (base / "segmentation").mkdir()
    (base / "segmentation" / "train.txt").write_text("0\n1\n")
    (base / "segmentation" / "val.txt").write_text("2.jpg\n")
    (base / "segmentation" / "test.txt").write_text("3\n")
    assert [p.stem for p in folder.split_pairs(str(tmp_path), "val")] == ["2"]
    assert [p.stem for p in folder.split_pairs(str(tmp_path), "train")] == ["0", "1"]


def test_hash_split_is_80_10_10_and_order_free():
    stems = [f"s{i}" for i in range(100)]
    a = folder.hash_split(stems, 0.1, 0.1)
    b = folder.hash_split(list(reversed(stems)), 0.1, 0.1)
    assert a == b and [len(a[k]) for k in ("train", "val", "test")] == [80, 10, 10]


# ---------------------------------------------------------------- selfies / fullbody sources

def test_new_sources_split_weights_and_soft_values(real_root):
    for sub, n_test, n_val in (("selfies", 120, 60), ("fullbody", 80, 40)):
        test = {p.stem for p in real.pairs(real_root, sub, "test")}
        val = {p.stem for p in real.pairs(real_root, sub, "val")}
        train = {p.stem for p in real.pairs(real_root, sub, "train")}
        assert (len(test), len(val)) == (n_test, n_val)
        assert not (train & test) and not (train & val) and not (val & test)
    # the fixed split is the first stems in SHA-1 order (the same rule as the other sources)
    order = folder.hash_split(real.HELDOUT["fullbody"]["test"] + real.HELDOUT["fullbody"]["val"], 0.0, 2 / 3)
    assert order["test"] == sorted(real.HELDOUT["fullbody"]["test"])
    c = _mixed_config(real_root)
    c.data.real_weights = {"portraits": 0.0, "selfies": 3.0, "people": 0.0, "fullbody": 1.0}
    parts = sources.train_sources(c, temporal=False)
    real_parts = {s.name: w for s, w in parts if type(s) is folder.PairSource}   # not the person-free photos
    assert set(real_parts) == {"selfies", "fullbody"}
    assert real_parts["selfies"] == pytest.approx(3 * real_parts["fullbody"])
    assert sum(real_parts.values()) == pytest.approx(c.data.weights.real)
    soft = folder.PairSource(real.pairs(real_root, "selfies", "train"), "s")
    by_stem = {p.stem: i for i, p in enumerate(soft.pairs)}
    assert 100 in np.unique(soft[by_stem["aiseg_train2"]]["mask"])       # soft values are kept
    c.data.real_weights = {"portraits": 1.0, "selfie": 1.0}
    with pytest.raises(ValueError, match="unknown subsets"):
        sources.train_sources(c, temporal=False)


def test_foreground_weights_select_sources(real_root):
    fgs, probs = real.foregrounds(real_root, {"fullbody": 1.0, "cutouts": 1.0})
    assert len(fgs) == 1 + 2 and probs == pytest.approx([0.5, 0.25, 0.25])
    src = composite.CompositeSource(fgs, real.backgrounds(real_root), (32, 32), size=40, seed=1,
                                    foreground_probabilities=[1.0, 0.0, 0.0])
    drawn = {src._draw_foreground(np.random.default_rng(i)).image_path for i in range(20)}
    assert drawn == {fgs[0].image_path}
    with pytest.raises(ValueError, match="no foreground"):
        real.foregrounds(real_root, {"portraits": 0.0})


def test_binary_foreground_edges_are_softened(tmp_path):
    img = np.full((80, 60, 3), 120, np.uint8)
    mask = np.zeros((80, 60), np.uint8)
    mask[10:80, 15:45] = 255
    _write(tmp_path / "i.jpg", img)
    _write(tmp_path / "m.png", mask)
    _, alpha, cut_bottom = composite.load_foreground(composite.Foreground(str(tmp_path / "i.jpg"),
                                                                          str(tmp_path / "m.png")))
    values = np.unique(alpha)
    assert cut_bottom and len(values) > 3                          # a ramp, not 0/255
    row = alpha[40, :, 0].astype(int)
    assert row.max() == 255 and row.min() == 0
    assert np.all(np.diff(row[: row.argmax() + 1]) >= 0)            # monotone ramp into the person
    soft = composite.soften_edge(mask[:, :, None], 1.5)
    assert soft[40, 14, 0] < 128 <= soft[40, 15, 0]


@pytest.mark.parametrize("problem", ["missing_mask", "other_size", "unreadable", "empty"])
def test_new_source_bad_input_names_the_file(tmp_path, problem):
    sub = tmp_path / "fullbody"
    (sub / "images").mkdir(parents=True)
    (sub / "masks").mkdir()
    if problem != "empty":
        _write(sub / "images" / "ccp_0001.jpg", np.zeros((20, 10, 3), np.uint8))
        if problem == "missing_mask":
            _write(sub / "images" / "ccp_0002.jpg", np.zeros((20, 10, 3), np.uint8))
        _write(sub / "masks" / "ccp_0001.png", _blob((20, 20) if problem == "other_size" else (20, 10),
                                                    (2, 18, 2, 8)))
        if problem == "unreadable":
            (sub / "images" / "ccp_0001.jpg").write_bytes(b"\xff\xd8\xff garbage \xff\xd9")
    if problem == "other_size":        # skipped when read, the warning naming the mask and the reason
        src = folder.PairSource(folder.list_pairs(str(sub)))
        with pytest.raises(data.BadInputError, match="none of its 1 pairs decodes"):
            src[0]
        assert src.stats["skipped_undecodable"] == 1
        with pytest.raises(data.BadInputError, match=r"ccp_0001\.png.*different aspect ratio"):
            io.read_pair(src.pairs[0].image_path, src.pairs[0].mask_path)
    elif problem == "missing_mask":
        import collections
        stats = collections.Counter()
        assert [p.stem for p in folder.list_pairs(str(sub), stats)] == ["ccp_0001"]
        assert stats["skipped_image_without_mask"] == 1
        assert stats["examples:skipped_image_without_mask"][0].endswith("ccp_0002.jpg")
    elif problem == "unreadable":
        with pytest.raises(data.BadInputError, match=r"fullbody.*no usable image/mask pairs|ccp_0001\.jpg"):
            folder.PairSource(folder.list_pairs(str(sub)))[0]
    else:
        with pytest.raises(data.BadInputError, match=r"fullbody: no usable image/mask pairs"):
            folder.list_pairs(str(sub))
    # a data root that does not exist is named as such; one without the new folders says which ones it needs
    with pytest.raises(data.BadInputError, match=r"nowhere does not exist"):
        real.pairs(str(tmp_path / "nowhere"), "selfies", "train")
    (tmp_path / "empty_root").mkdir()
    with pytest.raises(data.BadInputError, match=r"selfies/.*fullbody/"):
        real.pairs(str(tmp_path / "empty_root"), "selfies", "train")


def test_source_mean_val_selection_scores_every_source(real_root, tmp_path):
    from seg_jax.training import loop as train
    from seg_jax.training.checks import ConfigError, check_config
    c = _mixed_config(real_root)
    c.val_selection, c.num_steps, c.eval_every, c.max_eval_examples = "source_mean", 2, 2, 4
    c.eval_at_start = True
    summary = train.train_and_evaluate(c, tmp_path / "run", progress=False)
    val = summary["last_val"]
    import csv
    with open(tmp_path / "run" / "metrics_val.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 2]          # the starting weights are scored first
    assert summary["best_val_loss"] == pytest.approx(min(float(r["selection_loss"]) for r in rows))
    per_source = {s: val[f"dice_loss_{s}"] for s in real.SUBSETS}
    assert all(0.0 <= v <= 1.0 for v in per_source.values())
    assert val["selection_loss"] == pytest.approx(np.mean(list(per_source.values())))
    c.data.source = "synthetic"
    with pytest.raises(ConfigError, match="val_selection"):
        check_config(c)
    c.data.source, c.val_selection = "mixed", "worst"
    with pytest.raises(ConfigError, match="val_selection"):
        check_config(c)


def test_device_pipeline_draws_by_source_weight_and_mixes_real_davis_clips(real_root):
    from seg_jax.data import device_pipeline
    c = _mixed_config(real_root, temporal=True)
    c.data.pipeline, c.batch_size = "device", 4
    c.data.weights.davis, c.data.weights.pseudo_video = 0.5, 0.5
    c.data.real_weights = {"portraits": 0.0, "selfies": 1.0, "people": 0.0, "fullbody": 0.0}
    it = data.build_train_iterator(c, seed=0, temporal=True)
    assert it.real_clips == 2 and device_pipeline.real_clip_count(c, 3) == 2
    weights = np.asarray(it.arrays["weights"])
    assert weights.sum() == pytest.approx(1.0) and np.count_nonzero(weights) == 2   # the two selfie train pairs
    n_davis_train = sum(len(s) for s in real.davis_sequences(real_root, "train"))
    assert it.arrays["clip_frames"].shape[0] == n_davis_train
    batch = next(it)
    assert batch["image"].shape == (4, 2, 32, 32, 3)
    c.data.weights.davis = 0.0
    assert device_pipeline.real_clip_count(c, 4) == 0
    c.data.real_weights = {"portraits": 0.0, "selfies": 0.0, "people": 0.0, "fullbody": 0.0}
    with pytest.raises(ValueError, match="real_weights are all 0"):
        data.build_train_iterator(c, seed=0, temporal=True)
