"""Per-frame features of the frozen U-Net MobileNet, computed once per frame and kept on disk for cells-only training.

A cache part is a folder holding, for N frames in clip order:

- ``cell0.npy`` (N, h/8, w/8, 72), ``expand_3.npy`` (N, h/4, w/4, 72), ``expand_1.npy`` (N, h/2, w/2, 64),
  float16: :class:`seg_jax.training.cells.CellInputs`;
- ``mask.npy`` (N, h, w) uint8: the mask at the network's size (antialiased like the frame, 0..255);
- ``clips.json``: ``{"size": [h, w], "clips": [{"name", "start", "length"}, ...], "frames": N, "source": ...}``,
  written last, so a part without it is incomplete and is rebuilt. ``source`` says what the part was made from
  (the frozen weights' sha256, the clip names of its split, ...); a part whose ``source`` differs from the
  caller's is stale (a split or the weights changed) and is rebuilt too.

Frames are brought to the network's size exactly as the streaming step does (:func:`seg_jax.inference.streaming.
preprocess`: uint8 -> float, antialiased resize), so the cells train on the features they see in use.
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.data import clips as clip_data
from seg_jax.data import io
from seg_jax.inference.streaming import preprocess
from seg_jax.ops.resize import resize
from seg_jax.training.cells import CellInputs, frozen_inputs

INDEX_FILE = "clips.json"
ARRAYS = CellInputs._fields + ("mask",)


def read_sequence(seq: clip_data.Sequence, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A DAVIS-style sequence -> (frames (T, H, W, 3) uint8, masks (T, H, W, 1) uint8), mirrored if ``flip``."""
    frames = [io.read_pair(f, m) for f, m in zip(seq.frames, seq.masks)]
    images = np.stack([p["image"] for p in frames])
    masks = np.stack([p["mask"] for p in frames])
    return (images[:, :, ::-1], masks[:, :, ::-1]) if flip else (images, masks)


@jax.jit
def _mask_small(mask: jax.Array, size_ref: jax.Array) -> jax.Array:
    small = resize(mask.astype(jnp.float32), size_ref.shape[:2], antialias=True)
    return jnp.clip(jnp.round(small), 0, 255).astype(jnp.uint8)


def _features_fn(size: tuple[int, int]):
    def features(variables, frames):
        small = jax.vmap(lambda f: preprocess(f, size)[1][0])(frames)
        return frozen_inputs(variables, small)
    return jax.jit(features)


def build_part(out_dir: str, variables: Mapping[str, Any], clips: Iterable[tuple[str, np.ndarray, np.ndarray]],
               total_frames: int, size: Sequence[int], source: Mapping[str, Any], batch: int = 4) -> str:
    """Write one cache part from ``clips`` ((name, frames (T, H, W, 3) uint8, masks (T, H, W, 1) uint8) in order;
    ``total_frames`` their frame count) at network size ``size``; kept as it is when already complete and made
    from the same ``source`` (JSON-able: the weights' sha256, the clip names, ...), rebuilt when stale."""
    stale = part_staleness(out_dir, size, source)
    if stale is None:
        return out_dir
    if stale:
        print(f"cache part {out_dir} is stale ({stale}); rebuilding it", flush=True)
        os.remove(os.path.join(out_dir, INDEX_FILE))
    os.makedirs(out_dir, exist_ok=True)
    h, w = int(size[0]), int(size[1])
    shapes = {"cell0": (h // 8, w // 8, 72), "expand_3": (h // 4, w // 4, 72), "expand_1": (h // 2, w // 2, 64)}
    arrays = {k: np.lib.format.open_memmap(os.path.join(out_dir, k + ".npy"), "w+", np.float16, (total_frames, *s))
              for k, s in shapes.items()}
    arrays["mask"] = np.lib.format.open_memmap(os.path.join(out_dir, "mask.npy"), "w+", np.uint8,
                                               (total_frames, h, w))
    features = _features_fn((h, w))
    ref = jnp.zeros((h, w))
    index, at = [], 0
    for name, frames, masks in clips:
        index.append({"name": name, "start": at, "length": int(len(frames))})
        for i in range(0, len(frames), batch):
            feats = features(variables, jnp.asarray(frames[i:i + batch]))
            n = feats.cell0.shape[0]
            for key, value in zip(CellInputs._fields, feats):
                arrays[key][at + i:at + i + n] = np.asarray(value, np.float16)
        for i, m in enumerate(masks):
            arrays["mask"][at + i] = np.asarray(_mask_small(jnp.asarray(m[..., 0]), ref))
        at += len(frames)
    if at != total_frames:
        raise ValueError(f"cache part {out_dir}: {at} frames written, {total_frames} announced")
    for a in arrays.values():
        a.flush()
    with open(os.path.join(out_dir, INDEX_FILE), "w") as f:
        json.dump({"size": [h, w], "frames": at, "clips": index, "source": dict(source)}, f, indent=1)
    return out_dir


def part_staleness(out_dir: str, size: Sequence[int], source: Mapping[str, Any]) -> str | None:
    """None when the part in ``out_dir`` is complete and was made at ``size`` from ``source``; else why not
    ('' when there is no complete part at all)."""
    path = os.path.join(out_dir, INDEX_FILE)
    if not os.path.isfile(path):
        return ""
    with open(path) as f:
        meta = json.load(f)
    if list(meta.get("size", [])) != [int(size[0]), int(size[1])]:
        return f"made at {meta.get('size')}, wanted {list(size)}"
    made = json.loads(json.dumps(meta.get("source", {})))
    wanted = json.loads(json.dumps(dict(source)))
    if made != wanted:
        keys = sorted(k for k in set(made) | set(wanted) if made.get(k) != wanted.get(k))
        return "made from a different " + ", ".join(keys)
    return None


class CachePart:
    """A complete cache part opened read-only (memory-mapped): ``.inputs(rows)`` -> CellInputs float16 numpy,
    ``.masks(rows)`` -> (n, h, w) uint8, ``.clips`` the index."""

    def __init__(self, folder: str):
        path = os.path.join(folder, INDEX_FILE)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder}: no {INDEX_FILE}; the cache part is missing or incomplete, rebuild it")
        with open(path) as f:
            meta = json.load(f)
        self.folder, self.size, self.clips = folder, tuple(meta["size"]), meta["clips"]
        self.arrays = {k: np.load(os.path.join(folder, k + ".npy"), mmap_mode="r") for k in ARRAYS}

    def inputs(self, rows: np.ndarray) -> CellInputs:
        return CellInputs(*(self.arrays[k][rows] for k in CellInputs._fields))

    def masks(self, rows: np.ndarray) -> np.ndarray:
        return self.arrays["mask"][rows]


__all__ = ["build_part", "part_staleness", "CachePart", "read_sequence", "INDEX_FILE"]
