"""The named config variants are consistent schedules; an unknown variant names the known ones."""
import pytest

from seg_jax.configs import default


@pytest.mark.parametrize("variant", ["tiny", "cpu", "gpu", "cpu-short", "cpu-long", "gpu-long", "public-gpu",
                                     "public-pod"])
@pytest.mark.parametrize("model", ["unet", "mobilenet", "convlstm"])
def test_variants_are_consistent_schedules(variant, model):
    c = default.get_default_config()
    c.model.name = model
    c = default.apply_variant(c, variant)
    assert all(v % 32 == 0 and v > 0 for v in c.data.image_size)
    assert list(c.lr_boundaries) == sorted(c.lr_boundaries) and len(c.lr_boundaries) == len(c.lr_scales)
    assert c.batch_size > 0 and c.num_steps > 0 and 0 <= c.warmup_steps < c.num_steps
    assert 0 < c.eval_every <= max(c.num_steps, 2)


def test_cpu_short_is_bounded_in_time():
    c = default.apply_variant(default.get_default_config(), "cpu-short")
    assert 0 < c.max_train_seconds <= 3 * 3600
    assert c.lr_boundaries[-1] < c.num_steps


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown config variant 'fast'.*'cpu-short'"):
        default.apply_variant(default.get_default_config(), "fast")


@pytest.mark.parametrize("variant", ["gpu", "cpu-long", "gpu-long", "public-gpu", "public-pod"])
def test_clip_recipes_train_the_convlstm_on_clips_with_the_temporal_loss(variant):
    c = default.get_default_config()
    c.model.name = "convlstm"
    c = default.apply_variant(c, variant)
    assert c.data.clip_length >= 4 and c.temporal_loss_weight > 0
    m = default.apply_variant(default.get_default_config(), variant)   # per-frame models: the paper's loss
    assert m.temporal_loss_weight == 0


def test_gpu_long_runs_on_the_device_data_path_in_calls_that_fit_a_lent_gpu():
    c = default.apply_variant(default.get_default_config(), "gpu-long")
    assert c.data.pipeline == "device" and c.ema_decay > 0 and c.val_selection == "source_mean"
    assert 0 < c.max_train_seconds <= 9 * 60 and c.init_from == "seg_jax/weights/mobilenet"


@pytest.mark.parametrize("variant", ["public-gpu", "public-pod"])
def test_public_recipes_mix_stills_for_frames_and_real_clips_for_the_convlstm(variant):
    stills = default.apply_variant(default.get_default_config(), variant)
    assert stills.data.source == "public"
    assert stills.data.public_weights.coco > 0 and stills.data.public_weights.coco_negatives > 0
    assert stills.data.public_weights.davis17 == stills.data.public_weights.youtube_vis == 0
    c = default.get_default_config()
    c.model.name = "convlstm"
    clips = default.apply_variant(c, variant)
    video = clips.data.public_weights.davis17 + clips.data.public_weights.youtube_vis
    assert video > sum(clips.data.public_weights.values()) / 2


def test_an_old_stored_config_reads_as_a_complete_config_of_today():
    from seg_jax.configs.migrate import migrate_config
    stored = {"model": {"name": "convlstm", "widths": [4, 8]}, "bias_lr_scale": 3.0, "lr_boundaries": [10, 20],
              "lr_scales": [0.1, 0.1]}
    config = migrate_config(stored)
    assert config.model.name == "convlstm" and list(config.model.widths) == [4, 8]   # a run's own field is kept
    assert config.lr_boundaries == (10, 20) and "bias_lr_scale" not in config        # removed fields go
    assert config.ema_decay == default.get_default_config().ema_decay   # missing fields: the default
