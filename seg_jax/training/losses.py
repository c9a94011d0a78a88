"""Training losses on logits. Targets are float masks in [0, 1] (soft mattes allowed).

``weights`` (optional, shaped like the targets, 1 = counts, 0 = ignored; see
:data:`seg_jax.data.augment.IGNORE_KEY`): an ignored pixel counts in neither a numerator nor a denominator.
``weights=None`` is exactly the unweighted loss.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSSES = ("dice", "bce_dice", "bce_image_dice")


def _weighted_probs(logits: jax.Array, targets: jax.Array,
                    weights: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """(sigmoid probabilities, targets) in float32, both zeroed where ``weights`` is 0 (ignored pixels)."""
    probs = jax.nn.sigmoid(logits.astype(jnp.float32))
    targets = targets.astype(jnp.float32)
    if weights is None:
        return probs, targets
    weights = weights.astype(jnp.float32)
    return probs * weights, targets * weights


def dice_loss(logits: jax.Array, targets: jax.Array, smooth: float = 1.0,
              weights: jax.Array | None = None) -> jax.Array:
    """The paper's Dice loss over the whole batch: 1 - (2|A.B| + s) / (|A| + |B| + s).

    logits, targets (and weights): any matching shape, e.g. (B, H, W, 1). Returns a scalar.
    """
    probs, targets = _weighted_probs(logits, targets, weights)
    intersection = jnp.sum(probs * targets)
    return 1.0 - (2.0 * intersection + smooth) / (jnp.sum(probs) + jnp.sum(targets) + smooth)


def image_dice_loss(logits: jax.Array, targets: jax.Array, smooth: float = 1.0,
                    weights: jax.Array | None = None) -> jax.Array:
    """Dice loss per image, averaged over the images that hold a person: every image's people weigh the same,
    however few pixels they cover (a street frame's pedestrians as much as a selfie), where the batch Dice of
    :func:`dice_loss` lets the large people drown the small. Images without a person add nothing here.

    logits, targets (and weights): (B, ...) matching shapes. Returns a scalar (0 when no image holds a person).
    """
    probs, targets = _weighted_probs(logits, targets, weights)
    axes = tuple(range(1, targets.ndim))
    intersection = jnp.sum(probs * targets, axis=axes)
    truth = jnp.sum(targets, axis=axes)
    per_image = 1.0 - (2.0 * intersection + smooth) / (jnp.sum(probs, axis=axes) + truth + smooth)
    has_person = (truth >= 1.0).astype(jnp.float32)
    return jnp.sum(per_image * has_person) / jnp.maximum(jnp.sum(has_person), 1.0)


def _weighted_mean(values: jax.Array, weights: jax.Array | None) -> jax.Array:
    if weights is None:
        return jnp.mean(values)
    weights = jnp.broadcast_to(weights.astype(jnp.float32), values.shape)
    return jnp.sum(values * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def bce_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean binary cross-entropy with logits (works with soft targets) over the pixels that count."""
    return _weighted_mean(optax.sigmoid_binary_cross_entropy(logits.astype(jnp.float32),
                                                             targets.astype(jnp.float32)), weights)


def segmentation_loss(name: str, logits: jax.Array, targets: jax.Array, smooth: float = 1.0,
                      weights: jax.Array | None = None) -> jax.Array:
    """Loss by config name: 'dice' (the paper), 'bce_dice' (BCE + batch Dice) or 'bce_image_dice' (BCE + Dice
    per image with a person, :func:`image_dice_loss`)."""
    if name == "dice":
        return dice_loss(logits, targets, smooth, weights)
    if name == "bce_dice":
        return bce_loss(logits, targets, weights) + dice_loss(logits, targets, smooth, weights)
    if name == "bce_image_dice":
        return bce_loss(logits, targets, weights) + image_dice_loss(logits, targets, smooth, weights)
    raise ValueError(f"unknown loss {name!r}; set config.loss to one of {LOSSES}")


def temporal_consistency_loss(logits: jax.Array, targets: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean squared error between the predicted and the true frame-to-frame change of alpha.

    logits, targets: (B, T, H, W, 1) clips, T >= 2. The predicted alpha may move only where the true one moves,
    so a steady background is pushed to a steady prediction and a moving edge to move with the person (the
    temporal-coherence term of Robust Video Matting, applied to the sigmoid of the logits). A change counts only
    where both of its frames' pixels count (``weights``). Returns a scalar.
    """
    probs = jax.nn.sigmoid(logits.astype(jnp.float32))
    targets = targets.astype(jnp.float32)
    predicted_change = probs[:, 1:] - probs[:, :-1]
    true_change = targets[:, 1:] - targets[:, :-1]
    pair_weights = None if weights is None else weights[:, 1:] * weights[:, :-1]
    return _weighted_mean(jnp.square(predicted_change - true_change), pair_weights)
