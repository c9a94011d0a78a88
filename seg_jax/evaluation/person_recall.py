"""Person recall: of the labelled people, the share a prediction finds, overall and by the person's size.

A labelled *person* is a connected (8-neighbour) region of the true mask (``target >= 0.5``). A person is
*found* when at least :data:`FOUND_SHARE` of its counted pixels are predicted person (``alpha >= 0.5``). Pixels an
``ignore`` map marks (True / >= 128) count nowhere: they are removed from the person regions before the regions are
measured, so a region that is wholly ignored is no person. Regions smaller than :data:`MIN_AREA` of the image are
label specks, not people, and are left out.

NumPy and OpenCV only (the ship rule reads its constants without JAX); the jitted eval step counts through
:func:`seg_jax.evaluation.metrics.recall_sums`.

People are binned by their counted area as a share of the image (:data:`SIZE_BINS`): small (< 1 %), medium
(1-5 %), large (> 5 %). Counts are sums (``people``, ``people_found``, and ``people_<bin>``,
``people_found_<bin>``), so a split is scored exactly by adding images up (:func:`add_counts`), and
:func:`summarize_recall` turns totals into shares (``person_recall``, ``person_recall_<bin>``; a bin with no
people has no share).
"""
from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

FOUND_SHARE = 0.5       # a person is found when at least this share of its pixels is predicted person
MIN_AREA = 1e-4         # regions below this share of the image are label specks (about 17 px at 480x360)
SIZE_BINS = (("small", 0.0, 0.01), ("medium", 0.01, 0.05), ("large", 0.05, float("inf")))
PEOPLE_CENTRIC = ("people", "davis", "camvid")     # sources of small, many or partly hidden people: recall pooled
COUNT_KEYS = ("people", "people_found", *(f"people{s}_{b}" for b, _, _ in SIZE_BINS for s in ("", "_found")))


def _binary(x: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return None
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., 0]
    return x >= (128 if x.dtype == np.uint8 else 0.5)


def recall_counts(alpha: np.ndarray, target: np.ndarray, ignore: np.ndarray | None = None) -> dict[str, int]:
    """One image's people and people found.

    alpha: (H, W) or (H, W, 1) prediction, float in [0, 1] (or uint8 0..255); target: the true mask, same shape
    and scale; ignore: None or a same-sized map, True / >= 128 = left out. -> {key: count} for :data:`COUNT_KEYS`.
    """
    pred, true, ignored = _binary(alpha), _binary(target), _binary(ignore)
    if pred.shape != true.shape or (ignored is not None and ignored.shape != true.shape):
        raise ValueError(f"person recall: prediction {pred.shape}, mask {true.shape} and ignore "
                         f"{None if ignored is None else ignored.shape} must be the same size")
    counted = true if ignored is None else true & ~ignored
    counts = dict.fromkeys(COUNT_KEYS, 0)
    if not counted.any():
        return counts
    n, labels, stats, _ = cv2.connectedComponentsWithStats(counted.astype(np.uint8), connectivity=8)
    areas = stats[1:n, cv2.CC_STAT_AREA].astype(np.float64)
    hits = np.bincount(labels[pred & counted], minlength=n)[1:n].astype(np.float64)
    shares = areas / true.size
    keep = shares >= MIN_AREA
    found = hits >= FOUND_SHARE * areas
    counts["people"], counts["people_found"] = int(keep.sum()), int((keep & found).sum())
    for name, low, high in SIZE_BINS:
        in_bin = keep & (shares >= low) & (shares < high)
        counts[f"people_{name}"], counts[f"people_found_{name}"] = int(in_bin.sum()), int((in_bin & found).sum())
    return counts


def add_counts(total: Mapping[str, float] | None, counts: Mapping[str, float]) -> dict[str, float]:
    """``total`` + ``counts`` key by key (``total`` None: a copy of ``counts``)."""
    if total is None:
        return dict(counts)
    return {k: total.get(k, 0) + counts.get(k, 0) for k in {*total, *counts}}


def summarize_recall(totals: Mapping[str, float]) -> dict[str, float]:
    """Summed counts -> {'person_recall', 'people', 'person_recall_<bin>', 'people_<bin>'} (a bin's share only
    where it has people). Raises ValueError when there is no labelled person (recall is undefined there)."""
    if totals.get("people", 0) <= 0:
        raise ValueError("no labelled people in the masks (person recall is undefined there)")
    out = {"person_recall": totals["people_found"] / totals["people"], "people": float(totals["people"])}
    for name, _, _ in SIZE_BINS:
        people = totals.get(f"people_{name}", 0)
        out[f"people_{name}"] = float(people)
        if people > 0:
            out[f"person_recall_{name}"] = totals[f"people_found_{name}"] / people
    return out


def source_recall(totals: Mapping[str, float] | None, source: str) -> dict[str, float]:
    """:func:`summarize_recall` of one source's totals, with its name in the one-line error when it has no people:
    ``"<source>: no labelled people in its masks ..."``."""
    try:
        return summarize_recall(totals or {})
    except ValueError:
        raise ValueError(f"{source}: no labelled people in its masks, so person recall is undefined there; "
                         "score person-free images by false people (images flagged) instead") from None


def batch_recall_counts(probs: np.ndarray, targets: np.ndarray, valid: np.ndarray,
                        pixel_weights: np.ndarray) -> dict[str, np.ndarray]:
    """Host side of :func:`seg_jax.evaluation.metrics.recall_sums`: (N, H, W) probabilities, targets and pixel
    weights (0 = ignored), (N,) valid -> {key: int32 scalar} summed over the valid images."""
    total = dict.fromkeys(COUNT_KEYS, 0)
    for p, t, v, w in zip(np.asarray(probs), np.asarray(targets), np.asarray(valid), np.asarray(pixel_weights)):
        if v:
            total = add_counts(total, recall_counts(p, t, w < 0.5))
    return {k: np.asarray(total[k], np.int32) for k in COUNT_KEYS}
