"""Pure training and evaluation steps.

``train_step(state, batch) -> (state, metrics)`` and ``eval_step(state, batch) -> sums`` are plain functions
of explicit pytrees; ``make_train_step`` / ``make_eval_step`` bind the static pieces (model, loss) and jit them
with the state donated. Batches hold uint8 images and masks; conversion to float happens inside the step.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

from seg_jax.evaluation.metrics import binary_dice, recall_sums, segmentation_sums
from seg_jax.models import get_spec
from seg_jax.training.losses import segmentation_loss, temporal_consistency_loss
from seg_jax.training.optimizer import learning_rate, make_optimizer, plateau_scale, trainable_mask, trainable_patterns

Batch = Mapping[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything a training step reads and writes.

    ``opt_state`` is :func:`seg_jax.training.optimizer.make_optimizer`'s (the reduce-on-plateau scale lives there).
    ``ema_params`` is the exponential moving average of ``params`` (``config.ema_decay`` > 0), else None:
    the weights that validation scores and ``seg_jax.artifacts.ship`` exports.
    """
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array
    ema_params: Any = None


def create_train_state(variables: Mapping[str, Any], optimizer: optax.GradientTransformation,
                       rng: jax.Array, ema: bool = False) -> TrainState:
    """A step-0 state; ``ema`` keeps a moving average of the parameters, starting at them."""
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables.get("batch_stats", {}), opt_state=optimizer.init(params),
                      rng=rng,
                      ema_params=jax.tree_util.tree_map(jnp.array, params) if ema else None)


def ema_decay_at(decay: float, step: jax.Array) -> jax.Array:
    """The averaging weight of the old average at training step ``step``: ``decay``, ramped up as
    (1 + n) / (10 + n) over a run's first steps so that the average forgets its starting point quickly."""
    return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def update_ema(ema_params: Any, params: Any, decay: jax.Array) -> Any:
    """``decay * ema + (1 - decay) * params``, leaf by leaf."""
    return jax.tree_util.tree_map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)


def evaluation_state(state: TrainState) -> TrainState:
    """The state whose ``params`` are scored and shipped: the moving average where the run keeps one."""
    return state if state.ema_params is None else state.replace(params=state.ema_params)


def batch_to_inputs(batch: Batch, soft_targets: bool = True) -> tuple[jax.Array, jax.Array]:
    """uint8 images/masks -> float images in [0, 1] and float targets in [0, 1]."""
    images = batch["image"].astype(jnp.float32) / 255.0
    targets = batch["mask"].astype(jnp.float32) / 255.0
    if not soft_targets:
        targets = (targets >= 0.5).astype(jnp.float32)
    return images, targets


def pixel_weights(batch: Batch) -> jax.Array | None:
    """(…, H, W, 1) float32: 0 where the batch's ``ignore`` map marks a pixel (>= 128), 1 elsewhere; None when the
    batch has no ignore map (every pixel counts, and the losses and metrics are the unweighted ones)."""
    ignore = batch.get("ignore")
    return None if ignore is None else (ignore < 128).astype(jnp.float32)


def clip_settle_steps(config, model_name: str) -> int:
    """``config.settle_steps`` for a temporal model (extra passes over each clip's first frame), else 0."""
    return max(int(config.settle_steps), 0) if get_spec(model_name).temporal else 0


def model_logits(model: nn.Module, model_name: str, variables: Mapping[str, Any], images: jax.Array, *,
                 train: bool, settle_steps: int = 0) -> tuple[jax.Array, Any]:
    """Run the model; returns (logits shaped like the targets, updated batch_stats or None).

    ``settle_steps`` > 0 (temporal models): each clip (B, T, H, W, 3) runs with its first frame repeated that many
    more times in front, as a stream settles after a reset (:class:`seg_jax.inference.streaming.StreamingStep`); only
    the clip's own T frames' logits come back."""
    if settle_steps:
        images = jnp.concatenate([jnp.repeat(images[:, :1], settle_steps, axis=1), images], axis=1)
    mutable = ["batch_stats"] if train else False
    out = model.apply(variables, images, train=train, mutable=mutable)
    if train:
        out, updates = out
        new_stats = updates["batch_stats"]
    else:
        new_stats = None
    logits = out[0] if get_spec(model_name).temporal else out
    return (logits[:, settle_steps:] if settle_steps else logits), new_stats


def _split(params: Any, patterns: tuple[str, ...]) -> tuple[dict, dict]:
    """(trainable leaves, frozen leaves) as flat {path: array} dicts."""
    flat, flat_mask = traverse_util.flatten_dict(params), traverse_util.flatten_dict(trainable_mask(params, patterns))
    return ({k: v for k, v in flat.items() if flat_mask[k]}, {k: v for k, v in flat.items() if not flat_mask[k]})


def train_step(state: TrainState, batch: Batch, *, model: nn.Module, model_name: str, config) -> tuple[
        TrainState, dict[str, jax.Array]]:
    """One optimizer step on ``batch``; returns the new state and scalar metrics (loss, dice, lr, grad norm).

    Gradients are taken with respect to the ``config.trainable`` parameters alone (so XLA drops the backward
    pass of frozen layers that feed nothing trainable); the optimizer gives the others no update.
    ``config.freeze_batch_stats`` runs BatchNorm on its running statistics during training and leaves them
    unchanged, which small batches of correlated clip frames would otherwise drag.
    """
    images, targets = batch_to_inputs(batch, config.data.soft_targets)
    weights = pixel_weights(batch)
    temporal_weight = float(config.temporal_loss_weight) if get_spec(model_name).temporal else 0.0
    settle = clip_settle_steps(config, model_name)
    trainable, frozen = _split(state.params, trainable_patterns(config))

    def loss_fn(trainable_flat):
        params = traverse_util.unflatten_dict({**frozen, **trainable_flat})
        logits, new_stats = model_logits(model, model_name, {"params": params, "batch_stats": state.batch_stats},
                                         images, train=not config.freeze_batch_stats, settle_steps=settle)
        loss = segmentation_loss(config.loss, logits, targets, config.dice_smooth, weights)
        temporal = temporal_consistency_loss(logits, targets, weights) if temporal_weight else jnp.zeros(())
        return loss + temporal_weight * temporal, (new_stats, logits, temporal)

    (loss, (new_stats, logits, temporal)), grads_flat = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    if config.freeze_batch_stats:
        new_stats = state.batch_stats
    grads = traverse_util.unflatten_dict({**{k: jnp.zeros_like(v) for k, v in frozen.items()}, **grads_flat})
    updates, opt_state = make_optimizer(config).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {"loss": loss, "dice": binary_dice(logits, targets, weights),
               "learning_rate": learning_rate(config, state.step, plateau_scale(state.opt_state)),
               "grad_norm": optax.global_norm(grads)}
    if temporal_weight:
        metrics["temporal_loss"] = temporal
    ema_params = state.ema_params
    if ema_params is not None:
        ema_params = update_ema(ema_params, params, ema_decay_at(float(config.ema_decay), state.step))
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=new_stats, opt_state=opt_state,
                              ema_params=ema_params)
    return new_state, metrics


def eval_step(state: TrainState, batch: Batch, *, model: nn.Module, model_name: str, config) -> dict[str, jax.Array]:
    """Metric sums over ``batch`` (padded examples, ``valid == False``, are excluded); with
    ``config.val_person_recall`` also the people counts of :func:`seg_jax.evaluation.metrics.recall_sums`."""
    images, targets = batch_to_inputs(batch, config.data.soft_targets)
    logits, _ = model_logits(model, model_name, {"params": state.params, "batch_stats": state.batch_stats},
                             images, train=False, settle_steps=clip_settle_steps(config, model_name))
    valid, weights = batch.get("valid"), pixel_weights(batch)
    if get_spec(model_name).temporal:  # fold time into the batch; a clip's frames share its validity
        b, t = logits.shape[:2]
        logits = logits.reshape((b * t,) + logits.shape[2:])
        targets = targets.reshape((b * t,) + targets.shape[2:])
        valid = None if valid is None else jnp.repeat(valid, t)
        weights = None if weights is None else weights.reshape((b * t,) + weights.shape[2:])
    sums = segmentation_sums(logits, targets, valid, weights)
    if config.val_person_recall:      # people and people found (seg_jax.evaluation.person_recall)
        sums.update(recall_sums(jax.nn.sigmoid(logits.astype(jnp.float32)), targets, valid, weights))
    return sums


def make_train_step(model: nn.Module, model_name: str, config, **jit_kwargs) -> Callable:
    """jit(train_step) with the state donated."""
    fn = lambda state, batch: train_step(state, batch, model=model, model_name=model_name, config=config)  # noqa: E731
    return jax.jit(fn, donate_argnums=0, **jit_kwargs)


def make_eval_step(model: nn.Module, model_name: str, config, **jit_kwargs) -> Callable:
    fn = lambda state, batch: eval_step(state, batch, model=model, model_name=model_name, config=config)  # noqa: E731
    return jax.jit(fn, **jit_kwargs)
