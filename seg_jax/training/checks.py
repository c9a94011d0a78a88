"""What the trainer checks before it writes anything: the config's values, the workdir, and that a workdir's
checkpoint holds the model being trained. Each failure is one line naming the field or folder and the fix."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import ml_collections
from flax import traverse_util

from seg_jax.configs.migrate import migrate_config
from seg_jax.models import MODEL_NAMES
from seg_jax.models.registry import get_spec
from seg_jax.training import checkpointing
from seg_jax.training.losses import LOSSES
from seg_jax.training.optimizer import trainable_patterns

MIN_FREE_DISK_BYTES = 200 * 1024 * 1024
VAL_SELECTIONS = ("pooled", "source_mean")   # config.val_selection (seg_jax.configs.default)


class ConfigError(ValueError):
    """A config value that cannot work; the message names the field and the fix."""


def check_config(config: ml_collections.ConfigDict) -> None:
    """Fail fast, with the field name, on values that would only break later."""
    if config.model.name not in MODEL_NAMES:
        raise ConfigError(f"config.model.name={config.model.name!r} is unknown; choose one of {list(MODEL_NAMES)}")
    if config.loss not in LOSSES:
        raise ConfigError(f"config.loss={config.loss!r} is unknown; choose one of {LOSSES}")
    h, w = config.data.image_size
    multiple = get_spec(config.model.name).size_multiple
    if h % multiple or w % multiple or h <= 0 or w <= 0:
        raise ConfigError(f"config.data.image_size={tuple(config.data.image_size)} must be positive multiples of "
                          f"{multiple} for model {config.model.name!r} (e.g. 256,256 or 160,288)")
    for field in ("batch_size", "eval_batch_size", "num_steps", "eval_every", "log_every", "checkpoint_every"):
        if int(config[field]) <= 0:
            raise ConfigError(f"config.{field}={config[field]} must be a positive integer")
    if config.learning_rate <= 0:
        raise ConfigError(f"config.learning_rate={config.learning_rate} must be > 0 (the paper uses 1e-4)")
    n = jax.device_count()
    if config.batch_size % n or config.eval_batch_size % n:
        raise ConfigError(f"config.batch_size={config.batch_size} and config.eval_batch_size="
                          f"{config.eval_batch_size} must be divisible by the {n} devices")
    if int(config.warmup_steps) < 0:
        raise ConfigError(f"config.warmup_steps={config.warmup_steps} must be >= 0 (0 = no warm-up)")
    if float(config.max_train_seconds) < 0:
        raise ConfigError(f"config.max_train_seconds={config.max_train_seconds} must be >= 0 (0 = no time limit)")
    if float(config.temporal_loss_weight) < 0:
        raise ConfigError(f"config.temporal_loss_weight={config.temporal_loss_weight} must be >= 0 (0 = off)")
    settle = config.settle_steps
    if isinstance(settle, bool) or not isinstance(settle, int) or settle < 0:
        raise ConfigError(f"config.settle_steps={settle!r} must be an integer >= 0 (0 = clips start from a zero "
                          "state)")
    if config.val_selection not in VAL_SELECTIONS:
        raise ConfigError(f"config.val_selection={config.val_selection!r}; use one of {list(VAL_SELECTIONS)}")
    if config.val_selection == "source_mean" and config.data.source != "mixed":
        raise ConfigError(f"config.val_selection='source_mean' needs the real sources (data.source='mixed'), "
                          f"not {config.data.source!r}; use 'pooled'")
    if not 0.0 <= float(config.ema_decay) < 1.0:
        raise ConfigError(f"config.ema_decay={config.ema_decay} must be in [0, 1) (0 = no moving average; "
                          "0.998 averages over ~500 steps)")
    if config.data.pipeline not in ("grain", "device"):
        raise ConfigError(f"config.data.pipeline={config.data.pipeline!r}; use 'grain' or 'device'")
    if config.model.dtype not in ("float32", "bfloat16", "float16"):
        raise ConfigError(f"config.model.dtype={config.model.dtype!r}; use float32 or bfloat16")


def check_trainable(config: ml_collections.ConfigDict, params) -> None:
    """``config.trainable`` must name at least one parameter (a typo would otherwise train nothing)."""
    patterns = trainable_patterns(config)
    paths = ["/".join(k) for k in traverse_util.flatten_dict(params)]
    unmatched = [p for p in patterns if not any(p in path for path in paths)]
    if unmatched:
        parts = {path.split("/")[0] for path in paths} | {path.split("/")[1].rstrip("_0123456789")
                                                          for path in paths if "/" in path}
        tops = sorted(parts)
        raise ConfigError(f"config.trainable={config.trainable!r}: {', '.join(map(repr, unmatched))} matches no "
                          f"parameter of model {config.model.name!r}; use substrings of its parameter paths, e.g. "
                          f"{', '.join(tops[:6])} (empty = train everything)")


def check_workdir(workdir: Path) -> None:
    """Fail before training if the workdir cannot be written or the disk is nearly full."""
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        probe = workdir / f".write_probe.{jax.process_index()}"  # one per process: hosts may share the workdir
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"workdir {workdir} is not writable ({e.strerror}); choose another --workdir") from None
    free = shutil.disk_usage(workdir).free
    if free < MIN_FREE_DISK_BYTES:
        raise OSError(f"only {free / 2**20:.0f} MiB free on the disk of {workdir}; free space or choose another "
                      f"--workdir (need >= {MIN_FREE_DISK_BYTES / 2**20:.0f} MiB for checkpoints)")


# config.model fields that change how the network computes but not its variables: a run may resume with others
MODEL_FIELDS_FREE_ON_RESUME = ("dtype", "depthwise_impl", "encoder_bn_momentum", "gate_activation")


def check_resumable(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuse, before anything is written, to resume a workdir whose checkpoint holds another model or another
    layout (with or without the parameters' moving average)."""
    stored_path = workdir / "config.json"
    if not stored_path.is_file() or not checkpointing.has_checkpoint(workdir):
        return
    try:
        stored_config = migrate_config(json.loads(stored_path.read_text()))
    except (OSError, ValueError, TypeError, AttributeError):
        return                      # unreadable: the restore itself will say whether the checkpoint fits
    stored = stored_config.model.to_dict()
    wanted = config.model.to_dict()
    differ = sorted(k for k in set(stored) | set(wanted)
                    if k not in MODEL_FIELDS_FREE_ON_RESUME and _jsonable(stored.get(k)) != _jsonable(wanted.get(k)))
    if differ:
        name = stored.get("name", "?")
        detail = ", ".join(f"{k}: {stored.get(k)!r} there vs {wanted.get(k)!r} here" for k in differ)
        raise ConfigError(f"--workdir {workdir} holds a checkpoint of model {name!r} with another config.model "
                          f"({detail}); resume it with --config configs/{name}.py (same model settings) or train "
                          f"this config in a new --workdir")
    stored_ema = float(stored_config.ema_decay) > 0
    if stored_ema != (float(config.ema_decay) > 0):
        there, here = ("keeps", "does not") if stored_ema else ("does not keep", "does")
        raise ConfigError(f"--workdir {workdir} holds a checkpoint that {there} a moving average of the parameters "
                          f"(config.ema_decay) and this config {here}; resume with the workdir's ema_decay or train "
                          f"in a new --workdir (--config.init_from={workdir} starts from its best weights)")


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))
