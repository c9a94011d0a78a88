"""Training losses on logits. Targets are float masks in [0, 1] (soft mattes allowed)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSSES = ("dice", "bce_dice")


def dice_loss(logits: jax.Array, targets: jax.Array, smooth: float = 1.0) -> jax.Array:
    """The paper's Dice loss over the whole batch: 1 - (2|A.B| + s) / (|A| + |B| + s).

    logits, targets: any matching shape, e.g. (B, H, W, 1). Returns a scalar.
    """
    probs = jax.nn.sigmoid(logits.astype(jnp.float32))
    targets = targets.astype(jnp.float32)
    intersection = jnp.sum(probs * targets)
    return 1.0 - (2.0 * intersection + smooth) / (jnp.sum(probs) + jnp.sum(targets) + smooth)


def bce_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean binary cross-entropy with logits (works with soft targets)."""
    return jnp.mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32), targets.astype(jnp.float32)))


def segmentation_loss(name: str, logits: jax.Array, targets: jax.Array, smooth: float = 1.0) -> jax.Array:
    """Loss by config name: 'dice' (the paper) or 'bce_dice' (BCE + Dice)."""
    if name == "dice":
        return dice_loss(logits, targets, smooth)
    if name == "bce_dice":
        return bce_loss(logits, targets) + dice_loss(logits, targets, smooth)
    raise ValueError(f"unknown loss {name!r}; set config.loss to one of {LOSSES}")


def temporal_consistency_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean squared error between the predicted and the true frame-to-frame change of alpha.

    logits, targets: (B, T, H, W, 1) clips, T >= 2. The predicted alpha may move only where the true one moves,
    so a steady background is pushed to a steady prediction and a moving edge to move with the person (the
    temporal-coherence term of Robust Video Matting, applied to the sigmoid of the logits). Returns a scalar.
    """
    probs = jax.nn.sigmoid(logits.astype(jnp.float32))
    targets = targets.astype(jnp.float32)
    predicted_change = probs[:, 1:] - probs[:, :-1]
    true_change = targets[:, 1:] - targets[:, :-1]
    return jnp.mean(jnp.square(predicted_change - true_change))
