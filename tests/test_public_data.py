"""Public data through TFDS (no network): tiny datasets in the layouts of coco/2017_panoptic, davis/480p and
youtube_vis (tests/public_fixtures.py) read into the same Grain pipeline; the prepare command and the stranger's
training command, with their one-line messages."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import public_fixtures as fx
import pytest

from seg_jax.configs import get_default_config
from seg_jax.data import pipeline, prepare
from seg_jax.data.public import coco, davis17, store
from seg_jax.data.public import sources as public

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("tfds")
    fx.make_coco(str(d))
    fx.make_davis(str(d))
    fx.make_youtube_vis(str(d))
    for name in ("coco", "davis17", "youtube_vis"):
        prepare.prepare(name, str(d), out=lambda *_: None)   # built already: writes seg_jax's index only
    return str(d)


def _config(data_dir, **weights):
    c = get_default_config()
    c.data.public_dir = data_dir
    c.data.image_size = (32, 32)
    c.data.clip_length = 2
    c.batch_size = 4
    c.eval_batch_size = 4
    if weights:
        for k in c.data.public_weights:
            c.data.public_weights[k] = weights.get(k, 0.0)
    return c


def test_coco_person_union_crowd_ignored_nothing_else_is_person(data_dir):
    vdir = store.check(data_dir, "coco")
    index = store.read_index(vdir)
    people = coco.CocoPeople(vdir, "train", "people")
    negatives = coco.CocoPeople(vdir, "train", "negatives")
    assert len(people) == 3 and len(negatives) == 2   # giraffe-only and unannotated images are negatives
    assert index["person_label"] == fx.COCO_LABELS.index("person")
    by_boxes = {}
    for i in range(len(people)):
        ex = people[i]
        assert ex["mask"].shape == ex["ignore"].shape == (32, 48, 1)
        by_boxes[int((ex["mask"] > 0).sum()), int((ex["ignore"] > 0).sum())] = ex
    # image 0: person box 16x12 = 192 px, the car is background; image 2: crowd 10x48 ignored, person 18x10;
    # image 4: person id 70000 (> 255: all three PNG channels) 14x16, the bicycle is background
    assert set(by_boxes) == {(192, 0), (180, 480), (224, 0)}
    crowd = by_boxes[(180, 480)]
    assert not np.any((crowd["mask"] > 0) & (crowd["ignore"] > 0))
    for i in range(len(negatives)):
        ex = negatives[i]
        assert not ex["mask"].any() and not ex["ignore"].any()


def test_davis_person_table_is_applied(data_dir):
    assert davis17.PERSON_IDS["bmx-trees"] == [2] and davis17.PERSON_IDS["india"] == [1, 2, 3]
    assert davis17.PERSON_IDS["blackswan"] == [] and davis17.PERSON_IDS["loading"] == [1, 3]
    vdir = store.check(data_dir, "davis17")
    clips = davis17.DavisClips(vdir, "train", 2)
    per_video = {}
    for i in range(len(clips)):
        k, _ = clips.locate(i)
        per_video.setdefault(clips.videos.names[k], set()).add(int((clips[i]["mask"][0] > 0).sum()))
    # one 32x6 band per person id: bmx-trees 1 of its 2 objects (the bicycle is not), india 3, blackswan 0
    assert per_video == {"bmx-trees": {192}, "india": {576}, "blackswan": {0}}
    frames = davis17.DavisFrames(vdir, "val")
    assert len(frames) == 3 and frames[0]["image"].shape == (32, 32, 3)


def test_davis_training_never_sees_the_heldout_sequences(data_dir, monkeypatch):
    vdir = store.check(data_dir, "davis17")
    monkeypatch.setattr(davis17, "_heldout", lambda: {"india"})
    assert davis17.DavisFrames(vdir, "train").videos.names == ["blackswan", "bmx-trees"]


def test_davis_table_comes_from_the_semantics_list(tmp_path, capsys):
    from seg_jax.data.public import davis_table
    sem = tmp_path / "davis_semantics.json"
    sem.write_text(json.dumps({"bike-packing": {"1": "bicycle", "2": "person"}, "bear": {"1": "bear"},
                               "salsa": {str(k): "person" for k in range(1, 11)}}))
    table = davis_table.person_ids(json.loads(sem.read_text()))
    assert table == {"bike-packing": [2], "bear": [], "salsa": list(range(1, 11))}
    shipped = davis17.PERSON_IDS
    assert len(shipped) == 150 and all(isinstance(v, list) for v in shipped.values())
    assert all(table[k] == shipped[k] for k in table)


def test_mixing_weights_pick_the_sources_and_bad_weights_stop_in_one_line(data_dir):
    stills = public.train_sources(_config(data_dir, coco=1.0, coco_negatives=0.5), temporal=False)
    assert [type(s).__name__ for s, _ in stills] == ["CocoPeople", "CocoPeople"]
    assert [w for _, w in stills] == [1.0, 0.5]
    clips = public.train_sources(_config(data_dir, coco=1.0, davis17=2.0, youtube_vis=1.0), temporal=True)
    assert [repr(s).split("(")[0] for s, _ in clips] == ["PseudoVideoFromPairs", "DavisVideosClips",
                                                          "YoutubeVisVideosClips"]
    for bad, message in (({"coco": -1.0}, "must be >= 0"), ({}, "all 0")):
        c = _config(data_dir)
        for k in c.data.public_weights:
            c.data.public_weights[k] = bad.get(k, 0.0)
        with pytest.raises(store.PublicDataError, match=message):
            public.train_sources(c, temporal=False)


def test_negatives_share_of_batches_follows_its_weight(data_dir):
    c = _config(data_dir, coco=0.75, coco_negatives=0.25)
    c.data.augment = False
    c.batch_size = 8
    it = pipeline.build_train_iterator(c, temporal=False)
    empty = [int((~next(it)["mask"].reshape(8, -1).any(1)).sum()) for _ in range(5)]
    assert sum(empty) == 10      # Grain's mix is exact: 1 in 4 examples from the negatives


def test_pipeline_batches_resume_on_exactly_the_next_batch(data_dir):
    c = _config(data_dir, coco=1.0, coco_negatives=0.2, davis17=0.5, youtube_vis=0.5)
    for temporal in (False, True):
        it = pipeline.build_train_iterator(c, seed=3, temporal=temporal)
        for _ in range(3):
            next(it)
        state = it.get_state()
        expected = next(it)
        resumed = pipeline.build_train_iterator(c, seed=3, temporal=temporal)
        resumed.set_state(json.loads(json.dumps(state)))
        got = next(resumed)
        assert set(got) == {"image", "mask", "ignore"}
        for key in got:
            np.testing.assert_array_equal(got[key], expected[key])
    batches = list(pipeline.build_eval_batches(c, "val", temporal=False))
    assert sum(int(b["valid"].sum()) for b in batches) == 2 + 3   # COCO val + DAVIS val frames


def test_training_on_the_public_sources_resumes_exactly(data_dir, tmp_path):
    """A run stopped at step 2 and rerun to step 3 ends where an uninterrupted 3-step run does. The model and
    batch shapes are those of tests/test_resume.py's config, so the compiled steps are shared through the
    persistent compilation cache."""
    import jax

    from seg_jax.configs import apply_variant
    from seg_jax.training import loop as train

    def config(steps):
        c = apply_variant(_config(data_dir, davis17=1.0), "tiny")
        c.data.source, c.data.public_dir = "public", data_dir
        c.model.name, c.model.widths = "unet", (4, 8, 8, 16)
        c.batch_size, c.learning_rate, c.lr_boundaries, c.lr_scales = 2, 2e-3, (1000,), (0.1,)
        c.eval_every, c.checkpoint_every, c.log_every, c.keep_checkpoints, c.num_steps = 2, 2, 1, 2, steps
        return c

    assert train.train_and_evaluate(config(2), tmp_path / "a", progress=False)["step"] == 2
    resumed = train.train_and_evaluate(config(3), tmp_path / "a", progress=False)
    straight = train.train_and_evaluate(config(3), tmp_path / "b", progress=False)
    for x, y in zip(jax.tree_util.tree_leaves(resumed["state"].params),
                    jax.tree_util.tree_leaves(straight["state"].params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _run(args, cwd, env_extra=None, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_strangers_command_with_no_data_names_the_prepare_command(tmp_path):
    cwd, tfds_dir = tmp_path / "clone", tmp_path / "tfds"
    cwd.mkdir()
    tfds_dir.mkdir()
    r = _run(["seg_jax.train", "--config", str(REPO / "configs" / "convlstm.py")], cwd,
             {"TFDS_DATA_DIR": str(tfds_dir)}, timeout=60)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [f"seg_jax.train: error: no public training data prepared in {tfds_dir}: run `python -m "
                     "seg_jax.data.prepare davis17` (needs ~3 GB free); also usable: kaggle (~2 GB, manual download), "
                     "youtube_vis (~45 GB, manual download), coco (~60 GB); or train on a folder: "
                     "--config.data.root=<dir>"]
    assert list(cwd.iterdir()) == [] and list(tfds_dir.iterdir()) == []   # no workdir, nothing half-written


def test_default_workdir():
    from seg_jax.training.loop import default_workdir
    assert default_workdir("configs/convlstm.py") == "runs/convlstm"
    assert default_workdir("configs/mobilenet.py:cpu-long") == "runs/mobilenet-cpu-long"


def _quiet(*_):
    pass


def test_prepare_refuses_in_one_line_and_deletes_nothing(data_dir, tmp_path, monkeypatch, capsys):
    assert prepare.main(["imagenet", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == ("seg_jax.data.prepare: error: unknown dataset 'imagenet'; choose one "
                                               "of coco, davis17, youtube_vis, kaggle")
    assert prepare.main(["youtube_vis", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "youtube_vis needs a manual download: put train_all_frames.zip" in err and "\n" not in err
    assert str(tmp_path / "downloads" / "manual") in err
    monkeypatch.setattr(prepare.importlib.util, "find_spec", lambda name: None)
    assert prepare.main(["davis", "--data_dir", str(tmp_path)]) == 2
    assert "needs tensorflow, importlib_resources (only to prepare; training does not): pip install " \
        "'seg_jax[prepare]'" in capsys.readouterr().err
    monkeypatch.setattr(prepare, "check_packages", _quiet)
    monkeypatch.setattr(prepare, "free_gb", lambda path: 1.5)
    assert prepare.main(["davis17", "--data_dir", str(tmp_path)]) == 2
    assert "davis17 needs ~3 GB free in" in capsys.readouterr().err
    monkeypatch.setattr(prepare, "free_gb", lambda path: 500.0)

    def offline(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(prepare.socket, "create_connection", offline)
    assert prepare.main(["coco", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("seg_jax.data.prepare: error: no network: cannot reach "
                                              "images.cocodataset.org")
    assert list(tmp_path.iterdir()) == []          # nothing written by any refusal

    # a damaged folder that the tool did not leave behind is refused, not deleted
    broken = tmp_path / "broken"
    shutil.copytree(Path(data_dir) / "davis", broken / "davis")
    shard = next((broken / "davis/480p/2.1.0").glob("*train*"))
    shard.unlink()
    assert prepare.main(["davis17", "--data_dir", str(broken)]) == 2
    assert "half-built (1 shard files missing" in capsys.readouterr().err
    assert (broken / "davis/480p/2.1.0/dataset_info.json").exists()
    with pytest.raises(store.PublicDataError, match="half-built"):
        public.ready(_config(str(broken), davis17=1.0))
    # another builder version
    other = tmp_path / "other"
    shutil.copytree(Path(data_dir) / "davis/480p/2.1.0", other / "davis/480p/2.0.0")
    with pytest.raises(store.PublicDataError, match="version 2.0.0 .* this seg_jax reads 2.1.0"):
        public.ready(_config(str(other), davis17=1.0))


def test_prepare_is_idempotent_and_finishes_an_interrupted_build(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "check_packages", _quiet)
    monkeypatch.setattr(prepare, "check_network", _quiet)
    monkeypatch.setattr(prepare, "free_gb", lambda path: 500.0)
    leftover = tmp_path / "davis/480p/incomplete.AB12CD_2.1.0"
    leftover.mkdir(parents=True)
    (leftover / "davis-train.array_record-00000-of-00001").write_bytes(b"partial")
    mine = tmp_path / "davis/480p/notes.txt"
    mine.write_text("the user's")
    monkeypatch.setattr(prepare, "_build", lambda name, d, manual: fx.make_davis(d))
    assert prepare.main(["davis17", "--data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"removed the interrupted build {leftover}" in out and "prepared in" in out
    assert not leftover.exists() and mine.exists()
    assert (tmp_path / "davis/480p/2.1.0" / store.INDEX_FILE).exists()
    monkeypatch.setattr(prepare, "_build", lambda *a: pytest.fail("a prepared dataset must not be rebuilt"))
    assert prepare.main(["davis17", "--data_dir", str(tmp_path)]) == 0
    assert prepare.main(["--list", "--data_dir", str(tmp_path)]) == 0
    listing = capsys.readouterr().out
    assert "davis17      prepared" in listing and "train 3, validation 1" in listing
    assert "coco is not prepared" in listing


def test_a_failed_download_says_no_network_and_leaves_nothing_half_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(prepare, "check_packages", _quiet)
    monkeypatch.setattr(prepare, "check_network", _quiet)
    monkeypatch.setattr(prepare, "free_gb", lambda path: 500.0)

    def failing(name, d, manual):
        (Path(d) / "davis/480p/incomplete.ZZ99ZZ_2.1.0").mkdir(parents=True)
        raise ConnectionError("Max retries exceeded with url: /csergi/share/davis/DAVIS-2017-trainval-480p.zip")
    monkeypatch.setattr(prepare, "_build", failing)
    assert prepare.main(["davis17", "--data_dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("seg_jax.data.prepare: error: no network: the download of davis17")
    assert not any((tmp_path / "davis/480p").iterdir())


def test_youtube_vis_keeps_person_tracks_only(data_dir):
    from seg_jax.data.public import youtube_vis
    vdir = store.check(data_dir, "youtube_vis")
    frames = youtube_vis.YoutubeVisFrames(vdir, "train")
    assert frames.videos.names == sorted(frames.videos.names, key=["v0", "v2"].index) or set(
        frames.videos.names) == {"v0", "v2"}                  # the lizard-only video is left out
    assert set(frames.videos.names) == {"v0", "v2"} and len(frames) == 7
    seen = {}
    for i in range(len(frames)):
        ex = frames[i]
        rows_mask = tuple(np.nonzero(ex["mask"][:, 0, 0])[0][[0, -1]]) if ex["mask"].any() else ()
        rows_ignore = tuple(np.nonzero(ex["ignore"][:, 0, 0])[0][[0, -1]]) if ex["ignore"].any() else ()
        seen.setdefault((rows_mask, rows_ignore), 0)
        seen[(rows_mask, rows_ignore)] += 1
    # v0: person rows 0-7 on 4 frames, the panda (rows 8-15) never; v2 frame 0: only the crowd (ignored),
    # frames 1-2: the person and the ignored crowd
    assert seen == {((0, 7), ()): 4, ((), (8, 15)): 1, ((0, 7), (8, 15)): 2}
    clips = youtube_vis.YoutubeVisClips(vdir, "train", 2)
    assert len(clips) == 3 + 2 and clips[0]["image"].shape == (2, 32, 32, 3)


def test_kaggle_prepares_from_its_manual_folder_without_tensorflow(tmp_path, monkeypatch, capsys):
    import cv2
    manual = tmp_path / "manual" / "people_segmentation"
    (manual / "images").mkdir(parents=True)
    (manual / "masks").mkdir()
    rng = np.random.default_rng(0)
    for k in range(10):
        cv2.imwrite(str(manual / "images" / f"p{k}.jpg"), rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
        mask = np.zeros((24, 32), np.uint8)
        mask[4:20, 8:24] = 255
        cv2.imwrite(str(manual / "masks" / f"p{k}.png"), mask)
    monkeypatch.setattr(prepare, "free_gb", lambda path: 500.0)
    data = tmp_path / "tfds"
    assert prepare.main(["kaggle", "--data_dir", str(data)]) == 2          # the manual folder is elsewhere
    assert "kaggle needs a manual download: put people_segmentation/images" in capsys.readouterr().err
    assert prepare.main(["kaggle", "--data_dir", str(data), "--manual_dir", str(manual.parent)]) == 0
    assert "kaggle: prepared in" in capsys.readouterr().out
    [(src, weight)] = public.train_sources(_config(str(data), kaggle=1.0), temporal=False)
    assert len(src) == 8 and src[0]["mask"].max() == 255 and weight == 1.0
