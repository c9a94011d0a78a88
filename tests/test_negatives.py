"""Hard negatives: person-free sources, non-person composite layers, the false-person metric and the ship rule."""
import json
import os

import cv2
import numpy as np
import pytest

from seg_jax.configs import default
from seg_jax.data import composite, io, negatives, real
from seg_jax.evaluation import false_person, metrics, ship_rule


def _write(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), arr[:, :, ::-1] if arr.ndim == 3 else arr)


def _negatives_root(root, animal_mask_hw=(20, 30)):
    rng = np.random.default_rng(0)
    for kind, stems in (("objects", [f"o{i}" for i in range(10)]), ("rooms", [f"r{i}" for i in range(10)]),
                        ("animals", [f"{seq}_{t:05d}" for seq in ("cow", "dog", "goat", "swan") for t in (0, 5)])):
        for stem in stems:
            _write(root / "negatives" / kind / "images" / f"{stem}.jpg", rng.integers(0, 255, (20, 30, 3), np.uint8))
            if kind == "animals":
                mask = np.zeros(animal_mask_hw, np.uint8)
                mask[5:15, 5:20] = 255
                _write(root / "negatives" / kind / "object_masks" / f"{stem}.png", mask)
    return str(root)


def test_splits_hold_out_whole_sequences_and_every_image_once(tmp_path):
    root = _negatives_root(tmp_path)
    splits = negatives.make_splits(root)
    assert splits == negatives.make_splits(root)                      # deterministic
    parts = {s: negatives.negative_images(root, s, splits=splits) for s in ("train", "val", "test")}
    every = sorted(p for ps in parts.values() for p in ps)
    assert len(every) == len(set(every)) == 28                       # disjoint, nothing lost
    assert parts["val"] and parts["test"]
    animals = {s: {os.path.basename(p).rsplit("_", 1)[0] for p in ps if "animals" in p} for s, ps in parts.items()}
    assert not (animals["train"] & (animals["val"] | animals["test"]))   # a sequence never straddles splits
    assert negatives.main(["--data_root", root, "--write_splits", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text()) == splits


def test_shipped_split_file_covers_every_kind():
    splits = negatives.load_splits()
    assert set(splits) == set(negatives.KINDS)
    for kind in negatives.KINDS:
        assert splits[kind]["val"] and splits[kind]["test"]
        assert not set(splits[kind]["val"]) & set(splits[kind]["test"])


def test_negative_images_have_empty_masks(tmp_path):
    root = _negatives_root(tmp_path)
    src = negatives.NegativeImageSource(negatives.negative_images(root, "train", splits={}))
    for i in range(len(src)):
        ex = src[i]
        assert ex["image"].shape == (20, 30, 3) and ex["mask"].shape == (20, 30, 1)
        assert not ex["mask"].any()


def test_animal_without_mask_and_mask_of_another_shape_are_one_line_errors(tmp_path):
    root = _negatives_root(tmp_path, animal_mask_hw=(30, 20))            # another aspect ratio
    objects = negatives.negative_objects(root, splits={})
    with pytest.raises(io.BadInputError, match="different aspect ratio"):
        composite.load_foreground(objects[0])
    os.remove(negatives.object_mask_path(objects[0].image_path))
    with pytest.raises(io.BadInputError, match="no object mask"):
        negatives.negative_objects(root, splits={})
    with pytest.raises(io.BadInputError, match="folder missing"):
        negatives.negative_images(str(tmp_path / "elsewhere"), "train")


def test_non_person_layer_adds_no_mask_and_hides_the_person_behind_it():
    person = np.full((40, 20, 3), 250, np.uint8)
    person_alpha = np.full((40, 20, 1), 255, np.uint8)
    thing = np.full((60, 60, 3), 10, np.uint8)
    thing_alpha = np.full((60, 60, 1), 255, np.uint8)
    bg = np.full((64, 64, 3), 128, np.uint8)
    scene = composite.sample_scene(np.random.default_rng(0), [(40, 20), (60, 60)], bg.shape[:2], (48, 48))
    for p in scene["persons"]:
        p.update(cx=np.array([24.0]), cy=np.array([24.0]), scale=np.array([1.0]), angle=np.array([0.0]))
    scene["is_person"] = [True, False]                                 # the thing in front of the person
    image, mask = composite.render([(person, person_alpha), (thing, thing_alpha)], bg, scene, (48, 48),
                                   photometric=False)
    assert not mask.any() and (image == 10).all()
    scene["is_person"] = [False, True]                                 # the thing behind the person
    image, mask = composite.render([(thing, thing_alpha), (person, person_alpha)], bg, scene, (48, 48),
                                   photometric=False)
    assert mask[10:38, 16:32].min() == 255 and mask[:, :4].max() == 0


def test_composites_without_people_have_empty_masks(tmp_path):
    root = _negatives_root(tmp_path)
    fg = str(tmp_path / "fg.png")
    rgba = np.zeros((30, 20, 4), np.uint8)
    rgba[5:30, 5:15] = 255
    assert cv2.imwrite(fg, rgba)
    objects = negatives.negative_objects(root, splits={})
    bgs = negatives.negative_images(root, "train", ("rooms",), splits={})
    alone = composite.CompositeSource([composite.Foreground(fg)], bgs, (32, 32), size=6, objects=objects,
                                      no_person_prob=1.0)
    assert all(not alone[i]["mask"].any() for i in range(6))
    beside = composite.CompositeSource([composite.Foreground(fg)], bgs, (32, 32), size=6, objects=objects,
                                       object_prob=1.0)
    assert all(beside[i]["mask"].any() for i in range(6))
    with pytest.raises(ValueError, match="probability"):
        composite.CompositeSource([composite.Foreground(fg)], bgs, (32, 32), objects=objects, object_prob=1.5)


def test_mixed_training_sources_take_the_negatives_weights(tmp_path):
    c = default.apply_variant(default.get_default_config(), "tiny")
    c.data.source, c.data.root = "mixed", _negatives_root(tmp_path)
    assert c.data.weights.negative > 0 and c.data.negatives.background_share > 0   # on by default
    src = real._negative_images(c, c.data.root, temporal=False)
    assert len(src) == len(negatives.negative_images(c.data.root, "train"))
    c.data.weights.negative = -0.1
    with pytest.raises(ValueError, match="weights must be >= 0"):
        real.train_sources(c, temporal=False)
    c.data.weights.negative = 0.1
    c.data.negatives.object_prob = 2.0
    with pytest.raises(ValueError, match=r"data.negatives.object_prob = 2.0"):
        real._negatives_config(c)


def test_false_person_metrics():
    alpha = np.zeros((100, 100), np.float32)
    alpha[:20, :20] = 0.9          # a 4 % region
    alpha[50, 50] = 0.9            # a stray pixel
    assert false_person.largest_region_share(alpha) == pytest.approx(0.04)
    scores = false_person.image_scores(alpha, np.zeros_like(alpha))
    assert scores["person_free"] and scores["false_person_share"] == pytest.approx(401 / 10000)
    assert false_person.flagged_share([0.04, 0.001, 0.0, 0.02]) == 0.5
    target = np.zeros_like(alpha)
    target[:20, :40] = 1.0         # half of the prediction region is person
    sums = {k: float(v) for k, v in metrics.probability_sums(alpha[None], target[None]).items()}
    m = metrics.summarize(sums)
    assert m["false_person"] == pytest.approx(1 / (10000 - 800))    # the stray pixel over the non-person pixels


def _evaluation(dice, false_share, flagged):
    return {"results": [{"model": "mobilenet", "full_res": {
        "people": {"per_image": {"dice": list(dice), "people": [1] * len(dice), "people_found": [1] * len(dice)}},
        "negatives": {"false_person_images": flagged, "per_image": {"false_person_share": list(false_share)}}}}]}


def test_ship_rule_respects_the_noise():
    rng = np.random.default_rng(0)
    base_dice = rng.uniform(0.85, 0.98, 20)
    base_false = rng.uniform(0.0, 0.2, 40)
    shipped = _evaluation(base_dice, base_false, 0.8)
    noisy = _evaluation(base_dice + rng.normal(0, 0.003, 20), base_false * 0.5, 0.5)
    assert ship_rule.decide(noisy, shipped)["ship"]                    # noise alone is not "worse"
    worse = _evaluation(base_dice - 0.03, base_false * 0.5, 0.5)
    result = ship_rule.decide(worse, shipped)
    assert not result["ship"] and "people" in result["why"]
    no_gain = _evaluation(base_dice, base_false, 0.8)
    assert not ship_rule.decide(no_gain, shipped)["ship"]              # false people must go down
    with pytest.raises(ValueError, match="paired"):
        ship_rule.paired_bootstrap([1.0, 2.0], [1.0])
    block = ship_rule.paired_bootstrap(np.arange(40.0), np.zeros(40), block=8)
    assert block["difference"] == pytest.approx(19.5)
    assert block["low"] < block["difference"] < block["high"]


def test_ship_rule_cli(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_evaluation([0.9] * 5, [0.0] * 5, 0.0)))
    b.write_text(json.dumps(_evaluation([0.9] * 5, [0.1] * 5, 1.0)))
    assert ship_rule.main([str(a), str(b), "--out", str(tmp_path / "r.json")]) == 0
    assert "Decision: ship" in capsys.readouterr().out
    assert json.loads((tmp_path / "r.json").read_text())["ship"] is True
    assert ship_rule.main([str(a), str(tmp_path / "missing.json")]) == 2
    assert "seg_jax.ship_rule: error" in capsys.readouterr().err


def test_ship_rule_ships_a_gain_elsewhere_when_false_people_hold_and_refuses_more_of_them():
    rng = np.random.default_rng(1)
    base_dice = rng.uniform(0.80, 0.90, 30)
    base_false = rng.uniform(0.0, 0.2, 40)
    shipped = _evaluation(base_dice, base_false, 0.6)
    sharper = _evaluation(base_dice + 0.03, base_false + rng.normal(0, 0.002, 40), 0.6)
    result = ship_rule.decide(sharper, shipped)
    assert result["ship"] and result["better"] == ["people Dice"], result["why"]
    more_false = _evaluation(base_dice + 0.03, base_false + 0.05, 0.6)
    result = ship_rule.decide(more_false, shipped)
    assert not result["ship"] and "more false people" in result["why"]
    more_flagged = _evaluation(base_dice + 0.03, base_false, 0.7)
    result = ship_rule.decide(more_flagged, shipped)
    assert not result["ship"] and "more person-free photos flagged (0.700 vs 0.600)" in result["why"]
    same = ship_rule.decide(_evaluation(base_dice, base_false, 0.6), shipped)
    assert not same["ship"] and "nothing better" in same["why"]
