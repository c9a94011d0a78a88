"""The training loop end to end on the tiny configs: train, checkpoint, resume, evaluate; config errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_jax.training import checkpointing
from seg_jax.training.loop import ConfigError, check_config, train_and_evaluate
from seg_jax.training.metric_writer import read_metrics
from seg_jax.training.optimizer import learning_rate_schedule

REPO = Path(__file__).resolve().parents[1]


def _config(name, arg="tiny"):
    sys.path.insert(0, str(REPO))
    import importlib
    module = importlib.import_module(f"configs.{name}")
    return module.get_config(arg)


def _run(*args, check=True):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def test_schedule_is_the_papers_piecewise_decay():
    config = _config("mobilenet", None)
    schedule = learning_rate_schedule(config)
    b = config.lr_boundaries
    assert float(schedule(0)) == pytest.approx(1e-4)
    assert float(schedule(b[0])) == pytest.approx(1e-5)
    assert float(schedule(b[1])) == pytest.approx(1e-6)
    assert float(schedule(b[2] + 1)) == pytest.approx(1e-7)


@pytest.mark.parametrize("field, value, match", [
    ("model.name", "mobilenetv4", "config.model.name='mobilenetv4' is unknown"),
    ("loss", "focal", "config.loss='focal' is unknown"),
    ("data.image_size", (100, 100), "multiples of 32"),
    ("batch_size", 0, "config.batch_size=0 must be a positive integer"),
    ("temporal_loss_weight", -1.0, "temporal_loss_weight=-1.0 must be >= 0"),
    ("settle_steps", -2, "config.settle_steps=-2 must be an integer >= 0"),
])
def test_bad_config_values_fail_fast_with_the_field(field, value, match):
    config = _config("mobilenet")
    with config.unlocked():
        node = config
        *parents, leaf = field.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    with pytest.raises(ConfigError, match=match):
        check_config(config)


def test_cli_rejects_a_config_typo_and_a_missing_data_folder(tmp_path):
    proc = _run("-m", "seg_jax.train", "--config", "configs/mobilenet.py:tiny", "--workdir", str(tmp_path / "w"),
                "--config.batch_sz=4", check=False)
    assert proc.returncode != 0 and "batch_sz" in proc.stderr
    proc = _run("-m", "seg_jax.train", "--config", "configs/mobilenet.py:tiny", "--workdir", str(tmp_path / "w"),
                "--config.data.source=folder", f"--config.data.folder={tmp_path / 'nope'}", check=False)
    assert proc.returncode != 0
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_repeated_batch_loss_halves(tmp_path):
    """Overfitting two images must work: the loss falls by half within a few dozen steps."""
    config = _config("mobilenet")
    config.data.synthetic_size = 2
    config.num_steps = 40
    config.eval_every = 40
    config.checkpoint_every = 40
    train_and_evaluate(config, tmp_path, progress=False)
    losses = [r["loss"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert len(losses) == 40
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


@pytest.mark.parametrize("model", ["mobilenet", "convlstm"])
def test_tiny_cli_trains_checkpoints_resumes_and_evaluates(model, tmp_path):
    workdir = tmp_path / "run"
    out = _run("-m", "seg_jax.train", "--config", f"configs/{model}.py:tiny", "--workdir", str(workdir),
               "--noprogress")
    assert "scratch" in out.stdout and "completed at step 4" in out.stdout
    assert sorted(p.name for p in (workdir / "checkpoints" / "latest").iterdir()) == ["4"]
    assert list((workdir / "checkpoints" / "best").iterdir())
    assert (workdir / "metrics.jsonl").exists() and (workdir / "metrics_val.csv").exists()
    assert list((workdir / "tensorboard").iterdir())

    out = _run("-m", "seg_jax.train", "--config", f"configs/{model}.py:tiny", "--workdir", str(workdir),
               "--config.num_steps=6", "--noprogress")
    assert "resumed from step 4" in out.stdout and "completed at step 6" in out.stdout
    steps = [r["step"] for r in read_metrics(workdir) if r["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]

    result = tmp_path / "eval.json"
    out = _run("-m", "seg_jax.evaluate", "--config", f"configs/{model}.py:tiny", "--checkpoint", str(workdir),
               "--out", str(result), "--nofps")
    assert "| Dice loss | Dice | MAD | MSE | IoU | Boundary F |" in out.stdout
    metrics = json.loads(result.read_text())["results"][0]["resized"]["all"]
    assert 0.0 <= metrics["dice"] <= 1.0 and metrics["examples"] == 2


def test_unet_tiny_trains_two_steps(tmp_path):
    config = _config("unet")
    config.num_steps = 2
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 2 and np.isfinite(summary["best_val_loss"])
    assert checkpointing.has_checkpoint(tmp_path)


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    config = _config("mobilenet")
    config.num_steps = 2
    train_and_evaluate(config, tmp_path, progress=False)
    from seg_jax.artifacts import model_io
    from seg_jax.models import build as model_build
    with pytest.raises(ValueError, match="holds a 'mobilenet' model, not 'convlstm'"):
        model_io.load_weights("convlstm", tmp_path)
    variables, _ = model_io.load_weights("mobilenet", tmp_path)
    assert model_build.count_parameters(variables) == 1_033_545


def test_time_budget_stops_with_a_checkpoint_and_a_rerun_continues(tmp_path):
    config = _config("mobilenet")
    config.num_steps = 3
    config.max_train_seconds = 1e-6  # spent at the first logged step
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 1 and "time budget" in summary["status"]
    assert checkpointing.has_checkpoint(tmp_path)
    config.max_train_seconds = 0.0
    summary = train_and_evaluate(config, tmp_path, progress=False)
    assert summary["step"] == 3 and summary["status"] == "completed"
    steps = [r["step"] for r in read_metrics(tmp_path) if r["split"] == "train"]
    assert steps == [1, 2, 3]


def test_temporal_consistency_loss_penalises_change_where_the_truth_is_steady():
    import jax.numpy as jnp

    from seg_jax.training.losses import temporal_consistency_loss
    targets = jnp.zeros((1, 3, 4, 4, 1))
    steady = jnp.full((1, 3, 4, 4, 1), -2.0)
    flicker = steady.at[:, 1].set(2.0)
    assert float(temporal_consistency_loss(steady, targets)) == pytest.approx(0.0)
    assert float(temporal_consistency_loss(flicker, targets)) > 0.3
    moving = targets.at[:, 1:].set(1.0)           # the truth changes: following it costs nothing
    follows = jnp.where(moving > 0.5, 20.0, -20.0)
    assert float(temporal_consistency_loss(follows, moving)) < 1e-6
    assert float(temporal_consistency_loss(steady, moving)) > 0.2


def test_convlstm_trains_with_the_temporal_loss_settled_clips_and_ships_settle_steps(tmp_path):
    from seg_jax.artifacts.ship import ship
    config = _config("convlstm")
    config.num_steps = 2
    config.temporal_loss_weight = 1.0
    config.settle_steps = 1           # each clip's first frame runs twice, as a stream settles after a reset
    workdir = tmp_path / "run"
    summary = train_and_evaluate(config, workdir, progress=False)
    assert summary["step"] == 2
    rows = [r for r in read_metrics(workdir) if r["split"] == "train"]
    assert all(np.isfinite(r["temporal_loss"]) and r["temporal_loss"] >= 0 for r in rows)
    out = ship(workdir, "convlstm", (64, 64), tmp_path / "weights", results_dir=tmp_path / "results")
    assert json.loads((out / "manifest.json").read_text())["settle_steps"] == 1


def test_clip_recipes_settle_like_the_weights_they_start_from():
    from seg_jax.configs.default import weights_settle_steps
    for variant in ("cpu-long", "gpu-long"):
        clip_recipe = _config("convlstm", variant)
        # trainable cells: the U-Net MobileNet with pass-through cells, not the shipped moving-average cells
        assert clip_recipe.init_from == "seg_jax/weights/mobilenet" and clip_recipe.convlstm_warm_start > 0
        assert clip_recipe.settle_steps == weights_settle_steps(clip_recipe.init_from) == 0
        assert _config("mobilenet", variant).settle_steps == 0
    assert weights_settle_steps("seg_jax/weights/convlstm") == json.loads(
        (REPO / "seg_jax/weights/convlstm/manifest.json").read_text()).get("settle_steps", 0) > 0
    assert weights_settle_steps("") == 0 and weights_settle_steps("/nonexistent") == 0


def test_settled_logits_are_the_clip_after_its_first_frame_repeated():
    import jax
    import jax.numpy as jnp

    from seg_jax.models.build import build_model, init_variables
    from seg_jax.training.steps import clip_settle_steps, model_logits
    model = build_model({"name": "convlstm"})
    variables = init_variables(model, "convlstm", jax.random.PRNGKey(0), 32, 32)
    clip = jax.random.uniform(jax.random.PRNGKey(1), (1, 2, 32, 32, 3))
    settled, _ = model_logits(model, "convlstm", variables, clip, train=False, settle_steps=2)
    longer = jnp.concatenate([clip[:, :1], clip[:, :1], clip], axis=1)
    want, _ = model.apply(variables, longer, train=False)
    assert settled.shape == (1, 2, 32, 32, 1)
    np.testing.assert_allclose(np.asarray(settled), np.asarray(want[:, 2:]), atol=1e-6)
    assert clip_settle_steps(_config("mobilenet"), "mobilenet") == 0


def test_a_workdir_of_another_model_is_refused_before_anything_is_written(tmp_path):
    config = _config("mobilenet")
    config.num_steps = 2
    train_and_evaluate(config, tmp_path, progress=False)
    stored = (tmp_path / "config.json").read_text()
    other = _config("convlstm")
    with pytest.raises(ConfigError, match="holds a checkpoint of model 'mobilenet'.*configs/mobilenet.py.*new --work"):
        train_and_evaluate(other, tmp_path, progress=False)
    assert (tmp_path / "config.json").read_text() == stored
    config.num_steps = 3                      # the same model with a longer schedule resumes
    assert train_and_evaluate(config, tmp_path, progress=False)["step"] == 3


@pytest.mark.parametrize("args, message", [
    (["--config.batch_szie=4"], "the config has no field 'batch_szie' (Did you mean \"batch_size\""),
    (["--config.batch_size=abc"], "invalid literal for int()"),
    (["--config", "configs/mobilenet.py:tyni"], "unknown config variant 'tyni'"),
    (["--config", "configs/nope.py"], "cannot load the config file"),
    (["--noworkdir_given"], "Unknown command line flag"),
    (["--workdir="], "--workdir is empty"),
])
def test_cli_mistakes_are_one_line(tmp_path, args, message):
    base = ["--config", "configs/mobilenet.py:tiny", "--workdir", str(tmp_path / "w")]
    if args[0] == "--config":
        base = base[2:]
    elif args[0] == "--workdir=":
        base = base[:2]
    proc = _run("-m", "seg_jax.train", *base, *args, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.mark.parametrize("module", ["seg_jax.train", "seg_jax.evaluate"])
def test_help_exits_0_and_explains_overrides_and_variants(module):
    proc = _run("-m", module, "--help", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "--config.<field>=<value>" in proc.stdout and "cpu-long" in proc.stdout and "runs as code" in proc.stdout


def test_image_dice_weighs_each_image_with_a_person_alike_and_skips_empty_ones():
    """A tiny missed person costs the batch Dice almost nothing beside a found large one; the per-image Dice
    counts it as the batch's other half, an image with no person adds nothing, and ignored pixels count nowhere."""
    import jax.numpy as jnp

    from seg_jax.training.losses import dice_loss, image_dice_loss, segmentation_loss

    big = np.zeros((1, 32, 32, 1), np.float32)
    big[:, :, :16] = 1.0
    tiny = np.zeros((1, 32, 32, 1), np.float32)
    tiny[:, 4:6, 4:6] = 1.0
    targets = jnp.asarray(np.concatenate([big, tiny]))
    logits = jnp.where(jnp.asarray(np.concatenate([big, np.zeros_like(tiny)])) > 0, 20.0, -20.0)
    assert float(dice_loss(logits, targets)) < 0.01
    assert abs(float(image_dice_loss(logits, targets)) - (0.0 + (1 - 1 / 5)) / 2) < 1e-3   # 4 px, smooth 1
    empty = jnp.zeros((1, 32, 32, 1))
    with_empty = image_dice_loss(jnp.concatenate([logits, jnp.full((1, 32, 32, 1), 20.0)]),
                                 jnp.concatenate([targets, empty]))
    assert abs(float(with_empty) - float(image_dice_loss(logits, targets))) < 1e-6
    weights = jnp.ones_like(targets).at[1].set(0.0)                 # the tiny person's image ignored
    assert float(image_dice_loss(logits, targets, weights=weights)) < 0.01
    assert float(image_dice_loss(jnp.full((1, 8, 8, 1), 5.0), jnp.zeros((1, 8, 8, 1)))) == 0.0
    both = segmentation_loss("bce_image_dice", logits, targets)
    assert float(both) > float(segmentation_loss("bce_dice", logits, targets))
