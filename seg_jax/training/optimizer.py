"""The one optimizer: an Optax chain built once from the config and carried in the train state.

``make_optimizer(config)`` is, from the inside out: optional global-norm clipping, Adam's direction, optional
weight decay, and the learning rate (the paper's piecewise-constant decay after an optional linear warm-up, times
the reduce-on-plateau scale, floored at ``config.min_learning_rate``); parameters outside ``config.trainable`` get
no update at all (``optax.multi_transform`` with ``optax.set_to_zero``). The plateau scale is an injected
hyperparameter of the optimizer state, so the host loop changes it between steps with :func:`with_plateau_scale`
and the step itself stays ``optax.apply_updates(params, tx.update(grads, opt_state, params))``.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import traverse_util

TRAIN, FROZEN = "train", "frozen"


def learning_rate_schedule(config) -> optax.Schedule:
    """The paper's piecewise-constant decay, as config data (boundaries in steps, multiplicative scales), after
    ``config.warmup_steps`` of linear warm-up (Adam's first updates have full size whatever the gradient scale,
    which wrecks finely balanced starts such as the ConvLSTM warm start)."""
    boundaries, scales = tuple(config.lr_boundaries), tuple(config.lr_scales)
    if len(boundaries) != len(scales):
        raise ValueError(f"config.lr_boundaries {boundaries} and config.lr_scales {scales} must have the same "
                         f"length")
    if any(b2 <= b1 for b1, b2 in zip(boundaries, boundaries[1:])):
        raise ValueError(f"config.lr_boundaries must increase, got {boundaries}")
    piecewise = optax.piecewise_constant_schedule(config.learning_rate, dict(zip(boundaries, scales)))
    warmup = int(config.warmup_steps)
    if warmup <= 0:
        return piecewise
    return lambda step: piecewise(step) * jnp.minimum(1.0, (step + 1) / warmup)


def learning_rate(config, step: jax.Array, plateau_scale: jax.Array) -> jax.Array:
    """The rate of update ``step`` (0-based): the schedule times the plateau scale, never below the floor."""
    return jnp.maximum(learning_rate_schedule(config)(step) * plateau_scale, config.min_learning_rate)


def trainable_patterns(config) -> tuple[str, ...]:
    """``config.trainable`` (comma-separated path substrings) as a tuple; empty = every parameter trains."""
    value = config.trainable
    return tuple(p.strip() for p in value.split(",") if p.strip()) if isinstance(value, str) else tuple(value)


def trainable_mask(params: Any, patterns: tuple[str, ...]) -> Any:
    """A pytree of bools like ``params``: True where the '/'-joined parameter path contains one of
    ``patterns`` (every leaf when ``patterns`` is empty)."""
    flat = traverse_util.flatten_dict(params)
    return traverse_util.unflatten_dict({k: (not patterns) or any(p in "/".join(k) for p in patterns)
                                         for k in flat})


def make_optimizer(config) -> optax.GradientTransformation:
    """The whole update rule of a run; its state starts at the plateau scale 1."""
    patterns = trainable_patterns(config)

    def updates_at(plateau_scale):
        parts = [optax.clip_by_global_norm(config.grad_clip_norm)] if config.grad_clip_norm else []
        parts.append(optax.scale_by_adam())
        if config.weight_decay:
            parts.append(optax.add_decayed_weights(config.weight_decay))
        parts.append(optax.scale_by_schedule(lambda count: -learning_rate(config, count, plateau_scale)))
        labels = lambda params: jax.tree_util.tree_map(  # noqa: E731
            lambda trains: TRAIN if trains else FROZEN, trainable_mask(params, patterns))
        return optax.multi_transform({TRAIN: optax.chain(*parts), FROZEN: optax.set_to_zero()}, labels)

    return optax.inject_hyperparams(updates_at)(plateau_scale=1.0)


def plateau_scale(opt_state) -> jax.Array:
    """The reduce-on-plateau multiplier held in a :func:`make_optimizer` state."""
    return opt_state.hyperparams["plateau_scale"]


def with_plateau_scale(opt_state, scale: jax.Array):
    """``opt_state`` with its reduce-on-plateau multiplier replaced (the loop lowers it after evaluations)."""
    return opt_state._replace(hyperparams={**opt_state.hyperparams, "plateau_scale": scale})
