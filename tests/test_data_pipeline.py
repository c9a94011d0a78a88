"""Grain pipelines: shapes, determinism, resumable state, eval padding, sharding, workers."""
import json

import cv2
import numpy as np

from seg_jax import data
from seg_jax.configs import default


def tiny_config(**data_fields):
    c = default.apply_variant(default.get_default_config(), "tiny")
    c.model.name = "mobilenet"
    for k, v in data_fields.items():
        c.data[k] = v
    return c


def write_folder(root, n=10, hw=(40, 48)):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        img = rng.integers(0, 255, hw + (3,), dtype=np.uint8)
        mask = np.zeros(hw, np.uint8)
        mask[5:30, 10 + i:30 + i] = 255
        cv2.imwrite(str(root / "images" / f"im{i:02d}.jpg"), img)
        cv2.imwrite(str(root / "masks" / f"im{i:02d}.png"), mask)
    return root


def test_train_batch_shapes_and_determinism():
    c = tiny_config(augment=True)
    a = next(data.build_train_iterator(c, seed=3))
    b = next(data.build_train_iterator(c, seed=3))
    assert a["image"].shape == (2, 64, 64, 3) and a["image"].dtype == np.uint8
    assert a["mask"].shape == (2, 64, 64, 1) and a["mask"].dtype == np.uint8
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    other = next(data.build_train_iterator(c, seed=4))
    assert not np.array_equal(a["image"], other["image"])


def test_state_save_restore_gives_same_next_batch():
    c = tiny_config(augment=True)
    it = data.build_train_iterator(c, seed=0)
    for _ in range(3):
        next(it)
    state = json.loads(json.dumps(it.get_state()))
    expected = [next(it) for _ in range(2)]
    it2 = data.build_train_iterator(c, seed=0)
    it2.set_state(state)
    for e in expected:
        got = next(it2)
        np.testing.assert_array_equal(got["image"], e["image"])
        np.testing.assert_array_equal(got["mask"], e["mask"])


def test_train_iterator_is_infinite_and_reshuffles_each_epoch():
    c = tiny_config(augment=False, synthetic_size=4)
    c.batch_size = 4
    it = data.build_train_iterator(c, seed=0)
    epochs = [next(it)["image"] for _ in range(4)]  # one epoch per batch
    sums = [tuple(int(x) for x in e.reshape(4, -1).sum(1)) for e in epochs]
    assert all(sorted(s) == sorted(sums[0]) for s in sums)   # same examples each epoch...
    assert len(set(sums)) > 1                                 # ...in a new order


def test_sharding_splits_the_batch():
    c = tiny_config(augment=False)
    c.batch_size = 4
    a = next(data.build_train_iterator(c, seed=0, shard_index=0, shard_count=2))
    b = next(data.build_train_iterator(c, seed=0, shard_index=1, shard_count=2))
    assert a["image"].shape[0] == 2 and b["image"].shape[0] == 2
    assert not np.array_equal(a["image"], b["image"])


def test_temporal_batches():
    c = tiny_config()
    c.model.name = "convlstm"
    batch = next(data.build_train_iterator(c, seed=0))
    assert batch["image"].shape == (2, 2, 64, 64, 3) and batch["mask"].shape == (2, 2, 64, 64, 1)
    evals = list(data.build_eval_batches(c, split="val"))
    assert evals[0]["image"].shape == (4, 2, 64, 64, 3)


def test_eval_covers_whole_split_with_padding():
    c = tiny_config(synthetic_size=50)     # val = 5 examples, eval batch 4 -> 4 + (1 valid, 3 padded)
    batches = list(data.build_eval_batches(c, split="val"))
    assert [b["valid"].tolist() for b in batches] == [[True] * 4, [True, False, False, False]]
    assert all(b["image"].shape == (4, 64, 64, 3) for b in batches)
    assert not batches[-1]["image"][1:].any()
    again = list(data.build_eval_batches(c, split="val"))
    np.testing.assert_array_equal(batches[0]["mask"], again[0]["mask"])
    test = list(data.build_eval_batches(c, split="test"))
    assert not np.array_equal(test[0]["image"], batches[0]["image"])


def test_folder_source_train_and_eval(tmp_path):
    root = write_folder(tmp_path / "f", n=10)
    c = tiny_config(source="folder", folder=str(root), augment=True, soft_targets=False)
    batch = next(data.build_train_iterator(c, seed=0))
    assert batch["image"].shape == (2, 64, 64, 3)
    assert set(np.unique(batch["mask"])) <= {0, 255}
    val = list(data.build_eval_batches(c, split="val"))
    test = list(data.build_eval_batches(c, split="test"))
    assert sum(int(b["valid"].sum()) for b in val) == 1 and sum(int(b["valid"].sum()) for b in test) == 1
    c.model.name = "convlstm"
    clip = next(data.build_train_iterator(c, seed=0))
    assert clip["image"].shape == (2, 2, 64, 64, 3)


def test_workers_match_in_process(tmp_path):
    from absl import flags
    flags.FLAGS.mark_as_parsed()
    c = tiny_config(augment=True)
    ref = data.build_train_iterator(c, seed=1)
    expected = [next(ref) for _ in range(3)]
    c.data.num_workers = 2
    it = data.build_train_iterator(c, seed=1)
    got = [next(it) for _ in range(2)]
    state = json.loads(json.dumps(it.get_state()))
    for g, e in zip(got, expected):
        np.testing.assert_array_equal(g["image"], e["image"])
    it2 = data.build_train_iterator(c, seed=1)
    it2.set_state(state)
    np.testing.assert_array_equal(next(it2)["image"], expected[2]["image"])
