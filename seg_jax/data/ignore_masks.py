"""Per-image ignore masks written by the label audit (:mod:`seg_jax.data.label_audit`), and their loader.

Layout under an audit folder (``data_local/label_audit`` by default; derived from the shared data, never
committed)::

    <audit_dir>/<source>/<image path inside the source folder, extension .png>
    e.g. people/images/abc.png, davis/bear/frames/00012.png

Each file is a uint8 (H, W) PNG at the size of the label as seg_jax reads it (``seg_jax.data.io.read_pair``: the
image's size), 255 where the loss should ignore the pixel and 0 elsewhere. Only flagged images have a file.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from seg_jax.data.clips import FrameSource
from seg_jax.data.folder import PairSource


def relative_key(source: str, image_path: str) -> str:
    """``image_path``'s path inside the folder named ``source`` (its last occurrence), extension .png.

    ValueError (one line) when no folder of the path is named ``source``.
    """
    parts = Path(image_path).parts
    where = [i for i, p in enumerate(parts[:-1]) if p == source]
    if not where:
        raise ValueError(f"{image_path}: not inside a folder named {source!r}; cannot find its ignore mask")
    return str(Path(*parts[where[-1] + 1:]).with_suffix(".png"))


def ignore_mask_path(audit_dir: str | os.PathLike, source: str, image_path: str) -> Path:
    return Path(audit_dir) / source / relative_key(source, image_path)


DIRECTIONS = ("missed_person", "extra_person")


def load_ignore_mask(audit_dir: str | os.PathLike, source: str, image_path: str, shape: Sequence[int], *,
                     directions: Sequence[str] = DIRECTIONS, label: np.ndarray | None = None) -> np.ndarray | None:
    """The audit's ignore mask of one image: bool (H, W), True = ignore in the loss; None if it was not flagged.

    ``shape``: the label's (H, W) (or (H, W, C)) as the caller holds it; a mask of another size raises
    ValueError with one line naming both sizes and the file. ``directions``: which flagged regions to ignore;
    the two are told apart by the label (missed_person regions lie where the label is background, extra_person
    where it is person), so choosing one needs ``label`` (bool or uint8 (H, W[, 1]), person >= 128 for uint8).
    """
    unknown = set(directions) - set(DIRECTIONS)
    if unknown:
        raise ValueError(f"unknown ignore-mask directions {sorted(unknown)}; choose from {DIRECTIONS}")
    path = ignore_mask_path(audit_dir, source, image_path)
    if not path.exists():
        return None
    import cv2
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None or mask.ndim != 2:
        raise ValueError(f"{path}: not a single-channel ignore mask PNG; rerun python -m seg_jax.data.label_audit")
    h, w = int(shape[0]), int(shape[1])
    if mask.shape != (h, w):
        raise ValueError(f"{path}: ignore mask is {mask.shape[1]}x{mask.shape[0]} but its label is {w}x{h}; "
                         "the audit was made from other data: rerun python -m seg_jax.data.label_audit")
    ignore = mask >= 128
    if set(directions) == set(DIRECTIONS):
        return ignore
    if label is None:
        raise ValueError("load_ignore_mask: choosing directions needs the label (label=...)")
    person = np.asarray(label).reshape(h, w)
    person = person >= 128 if person.dtype == np.uint8 else person.astype(bool)
    if not directions:
        return np.zeros_like(ignore)
    return ignore & person if tuple(directions) == ("extra_person",) else ignore & ~person


def check_audit(audit_dir: str | os.PathLike, source: str, image_paths: Sequence[str],
                directions: Sequence[str]) -> None:
    """ValueError (one line) unless the audit of ``source`` fits the data: its folder exists, ``directions`` are
    known, and every ignore map names an image in the folders of ``image_paths`` (an audit made from another data
    root has stale file names, and its maps would be laid on the wrong images)."""
    folder = Path(audit_dir, source)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no label audit of {source!r}; run python -m seg_jax.data.label_audit, or set "
                         "data.label_audit.dir=''")
    unknown = set(directions) - set(DIRECTIONS)
    if unknown:
        raise ValueError(f"data.label_audit.directions: unknown {sorted(unknown)}; choose from {DIRECTIONS}")
    keys = {relative_key(source, os.path.join(d, name)) for d in {os.path.dirname(p) for p in image_paths}
            for name in os.listdir(d)}
    stale = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png") if str(p.relative_to(folder)) not in keys)
    if stale:
        raise ValueError(f"{folder}: {len(stale)} ignore maps name no image of this data (e.g. {stale[0]}); the audit "
                         "was made from another data root: rerun python -m seg_jax.data.label_audit with this "
                         "--data_root into a new --out")


class AuditedPairSource(PairSource):
    """Still pairs with the audit's ignore maps: ``source[i]`` -> {'image', 'mask', 'ignore'}, 'ignore' uint8
    (H, W, 1), 255 on the flagged regions of ``directions`` (zeros for an image the audit did not flag).

    ``name`` is the audit's source folder name (e.g. 'people').
    """
    has_ignore = True

    def __init__(self, pairs, name: str, audit_dir: str | os.PathLike, directions: Sequence[str] = ("missed_person",)):
        super().__init__(pairs, name)
        self.audit_dir, self.directions = str(audit_dir), tuple(directions)
        check_audit(self.audit_dir, name, [p.image_path for p in self.pairs], self.directions)

    def _read(self, pair) -> dict:
        example = super()._read(pair)
        mask = example["mask"]
        ignore = load_ignore_mask(self.audit_dir, self.name, pair.image_path, mask.shape,
                                  directions=self.directions, label=mask)
        flagged = np.zeros(mask.shape[:2], bool) if ignore is None else ignore
        return {**example, "ignore": (flagged.astype(np.uint8) * 255)[:, :, None]}

    def __repr__(self) -> str:
        return f"AuditedPairSource({self.name!r}, n={len(self.pairs)}, {self.audit_dir!r}, {self.directions})"


class AuditedFrameSource(FrameSource):
    """Video frames as still pairs with the audit's ignore maps (e.g. 'davis17'): ``source[i]`` -> {'image',
    'mask', 'ignore'}, 'ignore' uint8 (H, W, 1) as in :class:`AuditedPairSource`."""
    has_ignore = True

    def __init__(self, sequences, name: str, audit_dir: str | os.PathLike,
                 directions: Sequence[str] = ("missed_person",)):
        super().__init__(sequences)
        self.name, self.audit_dir, self.directions = name, str(audit_dir), tuple(directions)
        check_audit(self.audit_dir, name, [f for f, _ in self.items], self.directions)

    def _read(self, image_path: str, mask_path: str) -> dict:
        example = super()._read(image_path, mask_path)
        mask = example["mask"]
        ignore = load_ignore_mask(self.audit_dir, self.name, image_path, mask.shape, directions=self.directions,
                                  label=mask)
        flagged = np.zeros(mask.shape[:2], bool) if ignore is None else ignore
        return {**example, "ignore": (flagged.astype(np.uint8) * 255)[:, :, None]}

    def __repr__(self) -> str:
        return f"AuditedFrameSource({self.name!r}, n={len(self)}, {self.audit_dir!r}, {self.directions})"
