"""False people on one image: how much of what is not a person a prediction calls person.

Two numbers per image, both at the 0.5 threshold:
- ``false_person_share``: the share of the true non-person pixels predicted person;
- ``largest_region_share``: the largest connected (8-neighbour) predicted-person region, as a share of the
  image. On a person-free photo the image counts as *flagged* (a false person) when this is at least
  :data:`FLAG_AREA`: a region a viewer sees as a kept-sharp thing in a blurred room, not a few stray pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

FLAG_AREA = 0.01    # share of the image


def largest_region_share(alpha: np.ndarray, ignore: np.ndarray | None = None) -> float:
    """alpha (H, W) float in [0, 1] -> the largest connected region of ``alpha >= 0.5`` / (H * W); ``ignore``
    (H, W) bool, True = a pixel left out (not part of any region)."""
    pred = np.asarray(alpha) >= 0.5
    if ignore is not None:
        pred &= ~np.asarray(ignore, bool)
    if not pred.any():
        return 0.0
    count, _, stats, _ = cv2.connectedComponentsWithStats(pred.astype(np.uint8), connectivity=8)
    return float(stats[1:count, cv2.CC_STAT_AREA].max()) / pred.size


def image_scores(alpha: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> dict[str, float]:
    """alpha, target (H, W) float in [0, 1] -> {'dice', 'false_person_share', 'largest_region_share',
    'person_free'} for one image (Dice at 0.5; 1.0 when both prediction and truth are empty). ``ignore`` (H, W)
    bool, True = a pixel that counts in none of them (None: every pixel counts)."""
    counted = np.ones(np.shape(target), bool) if ignore is None else ~np.asarray(ignore, bool)
    pred, true = (np.asarray(alpha) >= 0.5) & counted, (np.asarray(target) >= 0.5) & counted
    inter, areas = float(np.sum(pred & true)), float(pred.sum() + true.sum())
    background = float((~true & counted).sum())
    return {"dice": 1.0 if areas == 0 else 2 * inter / areas,
            "false_person_share": float(np.sum(pred & ~true)) / background if background else 0.0,
            "largest_region_share": largest_region_share(alpha, ignore), "person_free": bool(not true.any())}


def flagged_share(region_shares: list[float], area: float = FLAG_AREA) -> float:
    """The share of person-free images flagged: largest predicted region >= ``area`` of the image."""
    return float(np.mean([s >= area for s in region_shares])) if region_shares else float("nan")
