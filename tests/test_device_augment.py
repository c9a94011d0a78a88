"""On-device augmentation: deterministic per (seed, step), shapes and dtypes of stills and clips, the mask
follows the person, clips move smoothly."""
import jax
import numpy as np
import pytest

from seg_jax.data.device_augment import DeviceAugment, device_batch, pack_pairs, pack_videos


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    pairs = []
    for hw in [(40, 30), (32, 48)]:
        image = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
        mask = np.zeros(hw + (1,), np.uint8)
        mask[hw[0] // 4: 3 * hw[0] // 4, hw[1] // 4: 3 * hw[1] // 4] = 255
        pairs.append({"image": image, "mask": mask})
    packed = pack_pairs(pairs, 32)
    assert packed["images"].shape == (2, 32, 32, 3) and packed["masks"].shape == (2, 32, 32, 1)
    packed["backgrounds"] = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    return jax.device_put(packed)


def test_stills_are_deterministic_per_step(arrays):
    key = jax.random.PRNGKey(0)
    a = device_batch(arrays, key, 5, batch_size=4, out_hw=(24, 32))
    b = device_batch(arrays, key, 5, batch_size=4, out_hw=(24, 32))
    c = device_batch(arrays, key, 6, batch_size=4, out_hw=(24, 32))
    assert a["image"].shape == (4, 24, 32, 3) and a["mask"].shape == (4, 24, 32, 1)
    assert a["image"].dtype == np.uint8 and a["mask"].dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(a["image"]), np.asarray(b["image"]))
    assert not np.array_equal(np.asarray(a["image"]), np.asarray(c["image"]))
    assert 0 < np.asarray(a["mask"]).mean() < 255                # the person is in view, not everywhere


def test_without_augmentation_the_mask_sits_on_the_person(arrays):
    calm = DeviceAugment(scale=(1.0, 1.0), translate=0.0, rotate_degrees=0.0, flip=0.0, composite=0.0,
                         brightness=0.0, contrast=0.0, saturation=0.0, shadow=0.0, blur=0.0, noise=0.0, blocking=0.0)
    out = device_batch(arrays, jax.random.PRNGKey(1), 0, batch_size=8, out_hw=(32, 32), aug=calm)
    images, masks = np.asarray(out["image"]), np.asarray(out["mask"])
    source = np.asarray(arrays["images"])
    for image, mask in zip(images, masks):      # each output is one of the packed photos, mask and all
        match = [np.abs(image.astype(int) - s).max() <= 2 for s in source]
        assert any(match)
        k = match.index(True)
        assert np.abs(mask.astype(int) - np.asarray(arrays["masks"])[k]).max() <= 2


def test_clips_move_smoothly_and_keep_the_person(arrays):
    out = device_batch(arrays, jax.random.PRNGKey(2), 3, batch_size=2, out_hw=(32, 32), clip_length=4)
    assert out["image"].shape == (2, 4, 32, 32, 3) and out["mask"].shape == (2, 4, 32, 32, 1)
    masks = np.asarray(out["mask"]).astype(float) / 255
    step = np.abs(np.diff(masks, axis=1)).mean()
    assert 0 < step < 0.2 and masks.mean() > 0.02


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="probability"):
        DeviceAugment(flip=1.5)
    with pytest.raises(ValueError, match="scale"):
        DeviceAugment(scale=(1.2, 0.8))


@pytest.mark.parametrize("model", ["mobilenet", "convlstm"])
def test_training_on_the_device_pipeline_resumes_on_the_next_batch(tmp_path, model):
    from seg_jax import data
    from seg_jax.configs import apply_variant, get_default_config
    from seg_jax.training.loop import train_and_evaluate
    config = apply_variant(get_default_config(), "tiny")
    config.model.name = model
    config.data.pipeline = "device"
    config.data.image_size = (32, 32)
    it = data.build_train_iterator(config, seed=0)
    first, second = next(it), next(it)
    shape = (2, 2, 32, 32, 3) if model == "convlstm" else (2, 32, 32, 3)
    assert first["image"].shape == shape
    again = data.build_train_iterator(config, seed=0)
    again.set_state({"pipeline": "device", "step": 1})
    np.testing.assert_array_equal(np.asarray(next(again)["image"]), np.asarray(second["image"]))
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == config.num_steps and np.isfinite(summary["best_val_loss"])


def _moving_square_video(length, hw=(24, 40)):
    """Frames of a bright square moving right by 2 px a frame on black, and its mask."""
    seq = []
    for t in range(length):
        mask = np.zeros(hw + (1,), np.uint8)
        mask[6:18, 8 + 2 * t: 20 + 2 * t] = 255
        seq.append({"image": np.repeat(mask, 3, axis=-1), "mask": mask})
    return seq


def test_packed_videos_only_start_clips_inside_one_sequence():
    packed = pack_videos([_moving_square_video(5), _moving_square_video(3)], clip_length=3, height=16)
    assert packed["clip_frames"].shape == (8, 16, 24, 3) and packed["clip_masks"].shape == (8, 16, 24, 1)
    assert packed["clip_starts"].tolist() == [0, 1, 2, 5]
    assert pack_videos([_moving_square_video(5)], 2, 16, stride=2)["clip_starts"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="long enough"):
        pack_videos([_moving_square_video(2)], 4, 16)


def test_real_clips_keep_their_motion_and_the_mask_on_the_person(arrays):
    calm = DeviceAugment(brightness=0.0, contrast=0.0, saturation=0.0, shadow=0.0, blur=0.0, noise=0.0,
                         blocking=0.0, clip_flicker=0.0)
    videos = jax.device_put(pack_videos([_moving_square_video(6)], clip_length=4, height=24))
    both = {**arrays, **videos}
    out = device_batch(both, jax.random.PRNGKey(3), 0, batch_size=3, out_hw=(24, 32), clip_length=4, aug=calm,
                       real_clips=2)
    again = device_batch(both, jax.random.PRNGKey(3), 0, batch_size=3, out_hw=(24, 32), clip_length=4, aug=calm,
                         real_clips=2)
    np.testing.assert_array_equal(np.asarray(out["image"]), np.asarray(again["image"]))
    images, masks = np.asarray(out["image"])[1:].astype(float), np.asarray(out["mask"])[1:].astype(float)
    assert images.shape == (2, 4, 24, 32, 3) and masks.shape == (2, 4, 24, 32, 1)
    np.testing.assert_allclose(images.mean(-1, keepdims=True), masks, atol=3)  # the person is white, the rest black
    assert masks.mean() > 20 and np.abs(np.diff(masks, axis=1)).mean() > 1    # in view, and moving
    with pytest.raises(ValueError, match="real_clips"):
        device_batch(arrays, jax.random.PRNGKey(3), 0, batch_size=3, out_hw=(24, 32), clip_length=4, real_clips=1)
