"""Person recall (sizes, ignore, no-person sources), CamVid in the evaluation (reader, ignore, rows on a tiny fake
data root) and the ship rule's pooled recall guard."""
import os

import cv2
import numpy as np
import pytest

from seg_jax.data import camvid, io, real
from seg_jax.evaluation import evaluate, metrics, person_recall, ship_rule


def _write(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _people_image():
    """100x100 truth with three people: 3x3 (0.09 %, small), 20x10 (2 %, medium), 30x30 (9 %, large)."""
    target = np.zeros((100, 100), np.float32)
    target[2:5, 2:5] = 1            # small
    target[10:30, 50:60] = 1        # medium
    target[60:90, 60:90] = 1        # large
    return target


def test_recall_counts_people_by_size_and_the_half_rule():
    target = _people_image()
    alpha = np.zeros_like(target)
    alpha[10:20, 50:60] = 0.9       # exactly half of the medium person: found
    alpha[60:74, 60:90] = 0.9       # 14 of 30 rows of the large person: not found
    counts = person_recall.recall_counts(alpha, target)
    assert (counts["people"], counts["people_found"]) == (3, 1)
    assert [counts[f"people_{b}"] for b in ("small", "medium", "large")] == [1, 1, 1]
    assert [counts[f"people_found_{b}"] for b in ("small", "medium", "large")] == [0, 1, 0]
    r = person_recall.summarize_recall(person_recall.add_counts(counts, person_recall.recall_counts(target, target)))
    assert r["person_recall"] == pytest.approx(4 / 6) and r["people"] == 6
    assert r["person_recall_small"] == 0.5 and r["person_recall_medium"] == 1.0 and r["person_recall_large"] == 0.5


def test_recall_leaves_ignored_pixels_and_specks_out():
    speck = np.zeros((200, 200), np.float32)
    speck[50, 5] = speck[100:110, 100:110] = 1      # a one-pixel speck (0.0025 %) is no person; 10x10 is one
    assert person_recall.recall_counts(speck, speck)["people"] == 1
    target = _people_image()
    ignore = np.zeros_like(target, bool)
    ignore[60:90, 60:90] = True                     # the large person wholly ignored: no person either
    ignore[10:18, 50:60] = True                     # 8 of the medium person's 20 rows ignored
    alpha = np.zeros_like(target)
    alpha[18:24, 50:60] = 0.9                       # 6 of its 12 counted rows: found (6 of 20 would not be)
    counts = person_recall.recall_counts(alpha, target, ignore)
    assert counts["people"] == 2 and counts["people_found"] == 1 and counts["people_large"] == 0
    assert person_recall.recall_counts(alpha, target)["people_found"] == 0     # without the ignore map: missed
    with pytest.raises(ValueError, match="same size"):
        person_recall.recall_counts(alpha, target, ignore[:50])


def test_no_person_source_is_one_line(capsys):
    empty = np.zeros((20, 20), np.float32)
    counts = person_recall.recall_counts(empty, empty)
    assert counts["people"] == 0
    with pytest.raises(ValueError, match=r"^selfies: no labelled people in its masks.*false people"):
        person_recall.source_recall(counts, "selfies")
    evaluate.warn_no_people("selfies", {"dice": 1.0})
    evaluate.warn_no_people("negatives", {"mad": 0.1})          # person-free photos: expected, no line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("seg_jax.evaluate: selfies: no labelled people")


@pytest.fixture()
def camvid_root(tmp_path):
    """A fake data root with camvid/: one frame per sequence of the split file; each has two people (a 2x2 one
    that is small and a 4x4 one, medium), and a rider on the right that is ignored."""
    for split, seqs in camvid.load_splits().items():
        for seq in seqs:
            stem = f"camvid_{seq}_000{len(split)}"
            image = np.full((18, 24, 3), 90, np.uint8)
            mask = np.zeros((18, 24), np.uint8)
            mask[2:4, 2:4] = 255
            mask[8:12, 8:12] = 255
            ignore = np.zeros((18, 24), np.uint8)
            ignore[4:16, 18:23] = 255
            _write(tmp_path / "camvid" / "images" / f"{stem}.jpg", image)
            _write(tmp_path / "camvid" / "masks" / f"{stem}.png", mask)
            _write(tmp_path / "camvid" / "ignore" / f"{stem}.png", ignore)
    return tmp_path


def test_camvid_reader_splits_by_sequence_and_says_what_is_missing(camvid_root):
    test = camvid.read_split(str(camvid_root), "test")
    assert [os.path.basename(t[0]) for t in test] == ["camvid_Seq05VD_0004.jpg"]
    assert {camvid.sequence_of(os.path.basename(i)[:-4]) for i, _, _ in camvid.read_split(str(camvid_root), "train")
            } == set(camvid.load_splits()["train"])
    os.remove(test[0][1])
    with pytest.raises(io.BadInputError, match=r"without its mask .*masks/camvid_Seq05VD_0004.png"):
        camvid.read_split(str(camvid_root), "test")


def test_camvid_ignore_of_another_size_is_one_line(camvid_root):
    entry = real.heldout_files(str(camvid_root), "val", real.CAMVID)[0]
    _write(entry["ignore_path"], np.zeros((9, 12), np.uint8))
    with pytest.raises(io.BadInputError, match=r"ignore map is 12x9 but its image is 24x18"):
        real.read_heldout(entry)


def test_camvid_rows_honour_ignore(camvid_root, capsys):
    assert real.CAMVID in evaluate.default_subsets(str(camvid_root))       # scored where the root has camvid/
    files = real.heldout_files(str(camvid_root), "val", real.CAMVID)
    truth = [real.read_heldout(e) for e in files]
    assert truth[0]["ignore"].shape == (18, 24, 1)
    # the truth, plus the whole ignored rider predicted person, minus the small person
    alphas = []
    for t in truth:
        a = t["mask"][..., 0].astype(np.float32) / 255
        a[t["ignore"][..., 0] >= 128] = 1.0
        a[2:4, 2:4] = 0.0
        alphas.append(a)
    m = evaluate.evaluate_full_resolution(evaluate.ReplayAlphas(alphas), files)
    assert m["false_person"] == 0.0 and m["dice"] == pytest.approx(2 * 16 / (16 + 20))   # the rider counts nowhere
    assert m["person_recall"] == 0.5 and m["person_recall_small"] == 0.0 and m["person_recall_medium"] == 1.0
    assert m["per_image"]["people"] == [2] * len(files) and m["per_image"]["people_found"] == [1] * len(files)
    lines = evaluate.full_res_table([{"model": "mobilenet", "split": "val", "full_res": {"camvid": m}}])
    assert "Person recall" in lines[2] and "| camvid (1) | mobilenet |" in lines[4]
    assert "| 0.5000 | 0.0000 | 1.0000 | - |" in lines[4]


def _evaluation(found, people, *, davis_found=None):
    """An evaluate JSON with the people-centric sources' per-image counts, Dice steady and fewer false people."""
    n = len(people)
    full_res = {"people": {"per_image": {"dice": [0.9] * n, "people": list(people), "people_found": list(found)}},
                "negatives": {"false_person_images": 0.5, "per_image": {"false_person_share": [0.01] * 30}}}
    if davis_found is not None:
        full_res["davis"] = {"per_image": {"dice": [0.7] * len(davis_found), "people": [1] * len(davis_found),
                                           "people_found": list(davis_found)}}
    return {"results": [{"model": "mobilenet", "full_res": full_res}]}


def _shipped(people, davis_found):
    base = _evaluation(people, people, davis_found=davis_found)
    base["results"][0]["full_res"]["negatives"] = {"false_person_images": 0.8,
                                                   "per_image": {"false_person_share": [0.05] * 30}}
    return base


def test_ship_rule_refuses_a_drop_in_recall_and_allows_a_steady_one():
    rng = np.random.default_rng(0)
    people = rng.integers(1, 6, 40)
    davis = [1] * 48
    shipped = _shipped(people, davis)
    steady = _evaluation(people - (rng.random(40) < 0.05), people, davis_found=davis)   # a miss or two: noise
    result = ship_rule.decide(steady, shipped)
    assert result["ship"], result["why"]
    assert result["recall"]["sources"] == ["people", "davis"] and not result["recall"]["refuse"]
    lost = _evaluation(people - (people >= 3), people, davis_found=[1] * 24 + [0] * 24)     # bystanders lost
    result = ship_rule.decide(lost, shipped)
    assert not result["ship"] and "person recall on the pooled people, davis drops" in result["why"]
    assert ship_rule.decide(lost, shipped, recall_guard=False)["ship"]      # Dice alone did not see it
    assert result["recall"]["high"] < 0 and result["recall"]["recall_candidate"] < result["recall"]["recall_shipped"]
    assert result["recall"]["by_source"]["davis"] == {"people": 48, "recall_candidate": 0.5, "recall_shipped": 1.0}
    assert "person recall, pooled" in ship_rule.to_markdown(result) and "davis 0.5000 vs 1.0000 (48 people)" in \
        ship_rule.to_markdown(result)


def test_ship_rule_refuses_when_recall_was_not_scored():
    people = [2] * 10
    no_counts = _evaluation(people, people)
    del no_counts["results"][0]["full_res"]["people"]["per_image"]["people"]
    result = ship_rule.decide(no_counts, _shipped(people, [1] * 8))
    assert not result["ship"] and "no person recall scored" in result["why"]
    other_files = _evaluation([1] * 10, [1] * 10)
    with pytest.raises(ValueError, match="different people per image"):
        ship_rule.decide(other_files, _shipped(people, [1] * 8))


def test_recall_sums_inside_jit_match_the_host_counts():
    import jax
    import jax.numpy as jnp
    target = np.stack([_people_image(), np.zeros((100, 100), np.float32), _people_image()])
    probs = target.copy()
    probs[0, 60:90, 60:90] = 0.0                    # image 0 misses its large person
    weights = np.ones_like(target)
    weights[2, 10:30, 50:60] = 0.0                  # image 2's medium person is ignored
    valid = np.array([True, True, False])           # image 2 is padding: counts nowhere
    got = jax.jit(metrics.recall_sums)(jnp.asarray(probs)[..., None], jnp.asarray(target)[..., None],
                                             jnp.asarray(valid), jnp.asarray(weights)[..., None])
    assert int(got["people"]) == 3 and int(got["people_found"]) == 2 and int(got["people_found_large"]) == 0
    valid[2] = True
    got = jax.jit(metrics.recall_sums)(jnp.asarray(probs), jnp.asarray(target), jnp.asarray(valid),
                                             jnp.asarray(weights))
    assert int(got["people"]) == 5 and int(got["people_medium"]) == 1


def test_training_selection_takes_the_pooled_person_recall(camvid_root):
    """validate(): CamVid scored as a val source (its ignore map in the batches), and with val_person_recall the
    source mean takes 1 - the pooled recall (here a prediction of no person: recall 0)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    from seg_jax.configs import default
    from seg_jax.evaluation.metrics import probability_sums
    from seg_jax.training import loop
    from seg_jax.training.steps import pixel_weights

    def nobody_step(state, batch):      # predicts no person anywhere
        target = batch["mask"].astype(jnp.float32) / 255.0
        probs, weights = jnp.zeros_like(target), pixel_weights(batch)
        assert weights is not None      # CamVid's ignore map reached the batch
        return {**probability_sums(probs, target, batch["valid"], weights),
                **metrics.recall_sums(probs, target, batch["valid"], weights)}

    c = default.get_default_config()
    c.model.name, c.data.source, c.data.root, c.data.image_size = "mobilenet", "mixed", str(camvid_root), (18, 24)
    c.val_selection, c.val_person_recall, c.eval_batch_size = "source_mean", True, 2
    sharding = NamedSharding(Mesh(np.array(jax.devices()[:1]), ("data",)), P("data"))
    val = loop.validate(c, jax.jit(nobody_step), None, sharding, temporal=False)
    assert [k for k in val if k.startswith("dice_loss_")] == ["dice_loss_camvid"]
    assert val["person_miss"] == 1.0
    assert val["selection_loss"] == pytest.approx((val["dice_loss_camvid"] + 1.0) / 2)
    counts = {**dict.fromkeys(person_recall.COUNT_KEYS, 0), "people": 4, "people_found": 1}
    assert loop.pooled_person_recall({"camvid": counts}) == 0.25
    assert loop.pooled_person_recall({"selfies": {"people": 4, "people_found": 4}}) is None


def test_val_rotation_moves_multi_person_photos_and_crowd_clips_and_never_test(tmp_path):
    from seg_jax.data import heldout_val
    for stem, people in (("a", 2), ("b", 1), ("c", 3), ("d", 1)):
        mask = np.zeros((40, 40), np.uint8)
        for k in range(people):
            mask[5:30, 2 + 12 * k:10 + 12 * k] = 255
        _write(tmp_path / "people" / "images" / f"{stem}.jpg", np.full((40, 40, 3), 80, np.uint8))
        _write(tmp_path / "people" / "masks" / f"{stem}.png", mask)
    splits = {"people": {"test": ["c"], "val": ["d"]}, "davis": {"test": ["hockey"], "val": ["rollerblade"]}}
    new = heldout_val.rotated(splits, str(tmp_path))
    assert new["people"] == {"test": ["c"], "val": ["d", "a"]}          # c is test: stays there
    assert new["davis"] == {"test": ["hockey"], "val": list(heldout_val.DAVIS_VAL)}
    assert heldout_val.rotated(new, str(tmp_path)) == new                # the command is idempotent
    with pytest.raises(ValueError, match="overlaps the test clips"):
        heldout_val.rotated({**splits, "davis": {"test": ["breakdance"], "val": []}}, str(tmp_path))
