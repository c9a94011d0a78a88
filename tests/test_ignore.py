"""The per-pixel ignore map: left out of the losses and the metrics, moved with the mask by every geometric
transform, and absent examples behave exactly as without it."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.data import augment, pseudo_video
from seg_jax.data.combinators import ConcatSource, RepeatFrames
from seg_jax.evaluation import metrics
from seg_jax.training import losses, steps


def _batch(seed=0, shape=(2, 16, 16, 1)):
    rng = np.random.default_rng(seed)
    logits = jnp.asarray(rng.normal(size=shape), jnp.float32)
    targets = jnp.asarray(rng.random(shape) > 0.5, jnp.float32)
    return logits, targets


@pytest.mark.parametrize("name", ["dice", "bce_dice"])
def test_ignored_pixels_count_in_neither_numerator_nor_denominator(name):
    logits, targets = _batch()
    weights = jnp.ones_like(targets).at[:, :8].set(0.0)
    loss = losses.segmentation_loss(name, logits, targets, 1.0, weights)
    # whatever the network says and whatever the label is on ignored pixels, the loss is the same ...
    changed = losses.segmentation_loss(name, logits.at[:, :8].set(9.0), targets.at[:, :8].set(1.0), 1.0, weights)
    np.testing.assert_allclose(loss, changed, rtol=1e-6)
    # ... and equals the loss over the kept pixels alone
    np.testing.assert_allclose(loss, losses.segmentation_loss(name, logits[:, 8:], targets[:, 8:], 1.0), rtol=1e-5)
    # no weights, or all ones, is the unweighted loss
    np.testing.assert_allclose(losses.segmentation_loss(name, logits, targets, 1.0, jnp.ones_like(targets)),
                               losses.segmentation_loss(name, logits, targets, 1.0), rtol=1e-6)


def test_temporal_loss_ignores_pixels_ignored_in_either_frame():
    logits, targets = _batch(1, (1, 3, 8, 8, 1))
    weights = jnp.ones_like(targets).at[:, 1, :4].set(0.0)
    a = losses.temporal_consistency_loss(logits, targets, weights)
    b = losses.temporal_consistency_loss(logits.at[:, 1, :4].set(5.0), targets, weights)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert float(losses.temporal_consistency_loss(logits.at[:, 1, :4].set(5.0), targets)) != pytest.approx(float(a))


def test_eval_sums_leave_ignored_pixels_out():
    logits, targets = _batch(2)
    weights = jnp.ones_like(targets).at[:, :, :5].set(0.0)
    full = metrics.segmentation_sums(logits, targets, pixel_weights=weights)
    cut = metrics.segmentation_sums(logits.at[:, :, :5].set(-9.0), targets.at[:, :, :5].set(1.0),
                                    pixel_weights=weights)
    for key in ("pixels", "intersection", "pred_area", "true_area", "soft_intersection", "abs_error"):
        np.testing.assert_allclose(full[key], cut[key], rtol=1e-6)
    assert float(full["pixels"]) == 2 * 16 * 11
    plain = metrics.segmentation_sums(logits, targets)
    assert float(plain["pixels"]) == 2 * 16 * 16
    same = metrics.segmentation_sums(logits, targets, pixel_weights=jnp.ones_like(targets))
    for key in plain:
        np.testing.assert_allclose(plain[key], same[key], rtol=1e-6)


def test_pixel_weights_from_a_batch():
    assert steps.pixel_weights({"image": 0, "mask": 0}) is None
    w = steps.pixel_weights({"ignore": jnp.asarray([[0, 127, 128, 255]], jnp.uint8)})
    np.testing.assert_array_equal(np.asarray(w), [[1, 1, 0, 0]])


def _example(hw=(24, 40), clip=0):
    rng = np.random.default_rng(3)
    shape = ((clip,) if clip else ()) + hw
    mask = np.zeros(shape + (1,), np.uint8)
    mask[..., 4:14, 6:30, :] = 255
    return {"image": rng.integers(0, 255, shape + (3,), dtype=np.uint8), "mask": mask, "ignore": mask.copy()}


@pytest.mark.parametrize("clip", [0, 3])
def test_ignore_takes_every_geometric_transform_of_the_mask(clip):
    ex = _example(clip=clip)
    all_on = {k: 1.0 for k in augment.DEFAULT_PROBS}
    for seed in range(4):
        rng = np.random.default_rng(seed)
        out = augment.paper_augment(augment.random_crop_resize(ex, (16, 16), rng), rng, all_on)
        np.testing.assert_array_equal(out["ignore"], out["mask"])
        assert out["ignore"].shape == out["mask"].shape
    if not clip:
        cam = pseudo_video.camera_clip(ex, 3, (16, 16), np.random.default_rng(0))
        np.testing.assert_array_equal(cam["ignore"], cam["mask"])
        rep = RepeatFrames([ex], 2)[0]
        assert rep["ignore"].shape == (2, 24, 40, 1)


def test_examples_without_ignore_are_unchanged_and_mixed_sources_get_zeros():
    ex = _example()
    plain = {"image": ex["image"], "mask": ex["mask"]}
    t = augment.TrainTransform((16, 16), seed=5)
    a, b = t.map_with_index(7, plain), t.map_with_index(7, ex)
    assert set(a) == set(b) == {"image", "mask"}          # the key is dropped unless the pipeline asks for it
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["mask"], b["mask"])
    ti = augment.TrainTransform((16, 16), seed=5, ignore=True)
    c = ti.map_with_index(7, plain)
    assert not c["ignore"].any()                           # a source without the map ignores nothing
    np.testing.assert_array_equal(c["mask"], a["mask"])    # and the rest is as without the key
    np.testing.assert_array_equal(ti.map_with_index(7, ex)["ignore"], a["mask"])

    class WithIgnore(list):
        has_ignore = True
    assert augment.carries_ignore(RepeatFrames(WithIgnore([ex]), 2))
    assert augment.carries_ignore(ConcatSource([("a", [plain]), ("b", WithIgnore([ex]))]))
    assert not augment.carries_ignore(ConcatSource([("a", [plain])]))
