"""Segmentation metrics as sums, so a split is scored exactly, whatever its batching.

``segmentation_sums`` runs inside the jitted eval step and returns per-batch sums (padding excluded by
``valid``); the host adds them up over the split and ``summarize`` turns the totals into metrics:
Dice loss (soft, the paper's), Dice, person IoU and mIoU (binarised at 0.5, pooled over all pixels, plus the
mean of per-image Dice), MAD, MSE, the boundary F-score, and false people: the share of the pixels that are not
person that are predicted person (the only score on person-free images, where Dice is undefined). mIoU is the
mean of the person and background IoU (what the portrait literature, e.g. PortraitNet and PP-HumanSeg,
reports); ``iou`` is the person IoU alone.
"""
from __future__ import annotations

from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.evaluation.person_recall import COUNT_KEYS, batch_recall_counts

EPS = 1e-7


def _boundary(mask: jax.Array) -> jax.Array:
    """Inner boundary of a binary (N, H, W) mask: pixels whose 3x3 neighbourhood leaves the mask."""
    eroded = -jax.lax.reduce_window(-mask, -jnp.inf, jax.lax.max, (1, 3, 3), (1, 1, 1), "SAME")
    return mask * (1.0 - eroded)


def _dilate(mask: jax.Array, radius: int) -> jax.Array:
    k = 2 * radius + 1
    return jax.lax.reduce_window(mask, -jnp.inf, jax.lax.max, (1, k, k), (1, 1, 1), "SAME")


def boundary_radius(height: int, width: int) -> int:
    """DAVIS-style tolerance: 0.8% of the image diagonal, at least 1 pixel."""
    return max(1, int(round(0.008 * (height ** 2 + width ** 2) ** 0.5)))


def binary_dice(logits: jax.Array, targets: jax.Array, pixel_weights: jax.Array | None = None) -> jax.Array:
    """Dice at 0.5 pooled over every counted pixel of a batch (the training step's running score).

    ``logits`` and ``targets`` share a shape (any); ``pixel_weights`` 0 marks ignored pixels. A batch with no
    person in truth or prediction scores 0."""
    pred, true = jax.nn.sigmoid(logits) >= 0.5, targets >= 0.5
    if pixel_weights is not None:
        pred, true = pred & (pixel_weights > 0), true & (pixel_weights > 0)
    return 2 * jnp.sum(pred & true) / jnp.maximum(jnp.sum(pred) + jnp.sum(true), 1)


def segmentation_sums(logits: jax.Array, targets: jax.Array, valid: jax.Array | None = None,
                      pixel_weights: jax.Array | None = None) -> dict[str, jax.Array]:
    """Per-batch sums for ``summarize``.

    Args:
      logits: (N, H, W, 1) or (N, H, W).
      targets: same shape, float in [0, 1].
      valid: (N,) bool; padded examples are excluded.
      pixel_weights: optional, same shape as targets; 0 = an ignored pixel, which counts in no sum (pixels,
        areas, errors, boundaries); None = every pixel counts.
    Returns: dict of float32 scalars.
    """
    return probability_sums(jax.nn.sigmoid(logits.astype(jnp.float32)), targets, valid, pixel_weights)


def probability_sums(probs: jax.Array, targets: jax.Array, valid: jax.Array | None = None,
                     pixel_weights: jax.Array | None = None) -> dict[str, jax.Array]:
    """Like ``segmentation_sums`` but for probabilities / soft alpha in [0, 1] (e.g. a Segmenter's output)."""
    if probs.ndim == 4:
        probs, targets = probs[..., 0], targets[..., 0]
        pixel_weights = None if pixel_weights is None else pixel_weights[..., 0]
    n, h, w = probs.shape
    weight = jnp.ones((n,), jnp.float32) if valid is None else valid.astype(jnp.float32)
    probs = probs.astype(jnp.float32)
    targets = targets.astype(jnp.float32)
    pred = (probs >= 0.5).astype(jnp.float32)
    true = (targets >= 0.5).astype(jnp.float32)
    if pixel_weights is None:
        per_image = lambda x: jnp.sum(x, axis=(1, 2))  # noqa: E731
        counted = jnp.full((n,), float(h * w), jnp.float32)
    else:
        pw = pixel_weights.astype(jnp.float32)
        per_image = lambda x: jnp.sum(x * pw, axis=(1, 2))  # noqa: E731
        counted = jnp.sum(pw, axis=(1, 2))
    inter = per_image(pred * true)
    pred_area, true_area = per_image(pred), per_image(true)
    image_dice = (2 * inter + EPS) / (pred_area + true_area + EPS)
    soft_inter = per_image(probs * targets)

    radius = boundary_radius(h, w)
    pred_b, true_b = _boundary(pred), _boundary(true)
    matched_pred = per_image(pred_b * _dilate(true_b, radius))
    matched_true = per_image(true_b * _dilate(pred_b, radius))

    sums = {
        "examples": weight,
        "pixels": weight * counted,
        "intersection": inter * weight,
        "pred_area": pred_area * weight,
        "true_area": true_area * weight,
        "soft_intersection": soft_inter * weight,
        "soft_pred_area": per_image(probs) * weight,
        "soft_true_area": per_image(targets) * weight,
        "abs_error": per_image(jnp.abs(probs - targets)) * weight,
        "sq_error": per_image((probs - targets) ** 2) * weight,
        "image_dice": image_dice * weight,
        "boundary_pred": per_image(pred_b) * weight,
        "boundary_true": per_image(true_b) * weight,
        "boundary_matched_pred": matched_pred * weight,
        "boundary_matched_true": matched_true * weight,
    }
    return {k: jnp.sum(v) for k, v in sums.items()}


def add_sums(total: dict[str, float] | None, batch: Mapping[str, jax.Array]) -> dict[str, float]:
    """Accumulate batch sums on the host in float64."""
    batch = {k: float(np.asarray(v, np.float64)) for k, v in jax.device_get(dict(batch)).items()}
    if total is None:
        return batch
    return {k: total[k] + batch[k] for k in total}


def summarize(sums: Mapping[str, float], smooth: float = 1.0) -> dict[str, float]:
    """Totals -> metrics. Dice loss uses the soft probabilities (the paper's loss on the whole split)."""
    if sums["examples"] <= 0:
        raise ValueError("no examples were evaluated; the split is empty")
    precision = sums["boundary_matched_pred"] / max(sums["boundary_pred"], EPS)
    recall = sums["boundary_matched_true"] / max(sums["boundary_true"], EPS)
    soft_dice = (2 * sums["soft_intersection"] + smooth) / (sums["soft_pred_area"] + sums["soft_true_area"] + smooth)
    union = sums["pred_area"] + sums["true_area"] - sums["intersection"]
    background_intersection = sums["pixels"] - sums["pred_area"] - sums["true_area"] + sums["intersection"]
    background_iou = (background_intersection + EPS) / (sums["pixels"] - sums["intersection"] + EPS)
    iou = (sums["intersection"] + EPS) / (union + EPS)
    return {
        "dice_loss": 1.0 - soft_dice,
        "dice": (2 * sums["intersection"] + EPS) / (sums["pred_area"] + sums["true_area"] + EPS),
        "mean_image_dice": sums["image_dice"] / sums["examples"],
        "iou": iou,
        "background_iou": background_iou,
        "miou": 0.5 * (iou + background_iou),
        "mad": sums["abs_error"] / sums["pixels"],
        "mse": sums["sq_error"] / sums["pixels"],
        "boundary_f": 2 * precision * recall / max(precision + recall, EPS),
        # false people: the share of the non-person pixels predicted person (at 0.5, and the soft alpha's mean)
        "false_person": (sums["pred_area"] - sums["intersection"]) / max(sums["pixels"] - sums["true_area"], EPS),
        "soft_false_person": ((sums["soft_pred_area"] - sums["soft_intersection"])
                              / max(sums["pixels"] - sums["soft_true_area"], EPS)),
        "examples": sums["examples"],
    }


def recall_sums(probs: jax.Array, targets: jax.Array, valid: jax.Array | None = None,
                pixel_weights: jax.Array | None = None) -> dict[str, jax.Array]:
    """The people counts of a batch, callable inside ``jax.jit`` (the connected regions are found on the host).

    probs, targets: (N, H, W) or (N, H, W, 1) in [0, 1]; valid: (N,) bool (None = all); pixel_weights: like targets,
    0 = an ignored pixel (None = none). -> {key: int32 scalar} for :data:`COUNT_KEYS`, to add like the metric sums
    above (:func:`seg_jax.evaluation.person_recall.summarize_recall` reads the totals).
    """
    if probs.ndim == 4:
        probs, targets = probs[..., 0], targets[..., 0]
        pixel_weights = None if pixel_weights is None else pixel_weights[..., 0]
    n = probs.shape[0]
    valid = jnp.ones((n,), bool) if valid is None else valid.astype(bool)
    weights = jnp.ones(targets.shape, jnp.float32) if pixel_weights is None else pixel_weights.astype(jnp.float32)
    shapes = {k: jax.ShapeDtypeStruct((), jnp.int32) for k in COUNT_KEYS}
    return jax.pure_callback(batch_recall_counts, shapes, probs.astype(jnp.float32), targets.astype(jnp.float32),
                             valid, weights, vmap_method="sequential")
