"""``--people primary``: keep one person, the main one, and remove everybody else from the alpha.

The regions are the connected components of ``alpha > 0.5``. At the start (and whenever the main person is lost)
the primary region is the one with the best ``area x centrality`` score (large and near the centre: the user
sits in front of the camera); after that it is followed frame to frame by overlap: the region with the highest
IoU with the previous primary region. The alpha is kept within a few pixels of the primary region (its soft
edge) and zeroed elsewhere. With nobody in view the alpha is returned as it is (all background) and the next
person to appear is chosen afresh.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

PEOPLE = ("all", "primary")


def centrality(cx: float, cy: float, h: int, w: int) -> float:
    """1 at the frame's centre, 0 at a corner (linear in the distance, normalised by the half-diagonal)."""
    d = np.hypot((cx - (w - 1) / 2) / max(w / 2, 1), (cy - (h - 1) / 2) / max(h / 2, 1)) / np.sqrt(2)
    return float(max(0.0, 1.0 - d))


class PrimaryPerson:
    """``select(alpha) -> alpha``: (H, W) float alpha in [0, 1] -> the same with only the primary region kept.

    ``min_iou``: below this overlap with the previous primary region the person counts as lost (re-chosen);
    ``edge``: pixels of soft alpha kept around the region; ``min_area``: smaller specks are never chosen.
    """

    def __init__(self, min_iou: float = 0.1, edge: int = 4, min_area: int = 16):
        self.min_iou, self.edge, self.min_area = float(min_iou), int(edge), int(min_area)
        self.previous: Optional[np.ndarray] = None   # (H, W) bool: the last primary region

    def reset(self) -> None:
        self.previous = None

    def _choose(self, labels: np.ndarray, stats: np.ndarray, centroids: np.ndarray) -> int:
        """The label to keep (0 when none qualifies)."""
        h, w = labels.shape
        candidates = [i for i in range(1, len(stats)) if stats[i, 4] >= self.min_area]
        if not candidates:
            return 0
        prev = self.previous
        if prev is not None and prev.shape == labels.shape and prev.any():
            overlaps = np.bincount(labels[prev], minlength=len(stats))   # |region ∩ previous| per label
            ious = [overlaps[i] / (stats[i, 4] + prev.sum() - overlaps[i]) for i in candidates]
            best = int(np.argmax(ious))
            if ious[best] >= self.min_iou:
                return candidates[best]
        return max(candidates, key=lambda i: stats[i, 4] * centrality(*centroids[i], h, w))

    def select(self, alpha: np.ndarray) -> np.ndarray:
        import cv2
        alpha = np.asarray(alpha, np.float32)
        n, labels, stats, centroids = cv2.connectedComponentsWithStats((alpha > 0.5).astype(np.uint8), 8)
        keep_label = self._choose(labels, stats, centroids) if n > 1 else 0
        if keep_label == 0:
            self.previous = None
            return alpha
        region = labels == keep_label
        self.previous = region
        keep = region.astype(np.uint8)
        if self.edge > 0:
            keep = cv2.dilate(keep, np.ones((2 * self.edge + 1,) * 2, np.uint8))
        return alpha * keep


__all__ = ["PEOPLE", "PrimaryPerson", "centrality"]
