"""Grain pipelines: the infinite, resumable training iterator and the finite, padded evaluation batches.

Training (per source): ``MapDataset.source(src)[shard::count].shuffle(seed).repeat()`` (a new order every
epoch), mixed by weight with ``MapDataset.mix`` (index arithmetic, deterministic), then
``map_with_index(TrainTransform)`` (RNG from (seed, shard, position)), ``batch(B, drop_remainder=True)`` and
``to_iter_dataset()``, with ``mp_prefetch`` when ``config.data.num_workers > 0``. The iterator's
``get_state()`` is a small JSON-serialisable dict; ``set_state`` resumes on exactly the next batch.

Evaluation: every example of the split in a fixed order, resized to ``config.data.image_size``, batched to
``config.eval_batch_size``; the last batch is zero-padded and marked with ``valid=False``.
"""
from __future__ import annotations

from typing import Iterator

import grain
import numpy as np

from seg_jax.data import augment, sources
from seg_jax.models.registry import get_spec


def _is_temporal(config, temporal: bool | None) -> bool:
    """The caller's answer, else the model spec's: do the batches hold clips (B, T, H, W, C)?"""
    return get_spec(config.model.name).temporal if temporal is None else bool(temporal)


def _shard_seed(seed: int, shard_index: int) -> int:
    return (int(seed) * 1_000_003 + int(shard_index)) & 0x7FFFFFFF


def build_train_dataset(config, seed: int, shard_index: int = 0, shard_count: int = 1,
                        temporal: bool | None = None) -> grain.IterDataset:
    """The training IterDataset (see module docstring); batches of ``config.batch_size // shard_count``."""
    temporal = _is_temporal(config, temporal)
    if config.batch_size % shard_count:
        raise ValueError(f"batch_size {config.batch_size} is not divisible by shard_count {shard_count}")
    weighted = sources.train_sources(config, temporal)
    datasets, weights = [], []
    for k, (src, weight) in enumerate(weighted):
        ds = grain.MapDataset.source(src)[shard_index::shard_count]
        if len(ds) == 0:
            raise ValueError(f"{src!r} has fewer examples ({len(src)}) than shards ({shard_count})")
        datasets.append(ds.shuffle(seed=_shard_seed(seed, shard_index) + 7919 * k).repeat())
        weights.append(float(weight))
    ds = datasets[0] if len(datasets) == 1 else grain.MapDataset.mix(datasets, weights)
    ds = ds.map_with_index(augment.TrainTransform(
        tuple(config.data.image_size), _shard_seed(seed, shard_index), config.data.augment,
        config.data.soft_targets, ignore=any(augment.carries_ignore(src) for src, _ in weighted)))
    ids = ds.batch(config.batch_size // shard_count, drop_remainder=True).to_iter_dataset(
        grain.ReadOptions(num_threads=int(config.data.read_threads), prefetch_buffer_size=4))
    if int(config.data.num_workers) > 0:
        ids = ids.mp_prefetch(grain.MultiprocessingOptions(num_workers=int(config.data.num_workers),
                                                           per_worker_buffer_size=2))
    return ids


def build_train_iterator(config, seed: int = 0, shard_index: int = 0, shard_count: int = 1,
                         temporal: bool | None = None):
    """Infinite training iterator over batches.

    Yields {'image': uint8 (B, H, W, 3), 'mask': uint8 (B, H, W, 1)} (or (B, T, H, W, C) for temporal models),
    B = ``config.batch_size // shard_count``, (H, W) = ``config.data.image_size``, T = ``config.data.clip_length``.
    Masks are 0..255 (soft alpha when ``config.data.soft_targets``, else 0/255). When a source has
    per-pixel ignore maps, every batch also has 'ignore' uint8 shaped like 'mask' (:data:`augment.IGNORE_KEY`).
    ``it.get_state()`` -> JSON-serialisable dict; ``it.set_state(state)`` resumes on exactly the next batch.
    """
    if config.data.pipeline == "device":
        from seg_jax.data.device_pipeline import DeviceIterator
        return DeviceIterator(config, seed, _is_temporal(config, temporal), shard_index, shard_count)
    return iter(build_train_dataset(config, seed, shard_index, shard_count, temporal))


def _pad_batch(items: list[dict], size: int) -> dict:
    n = len(items)
    out = {k: np.stack([it[k] for it in items]) for k in ("image", "mask", augment.IGNORE_KEY) if k in items[0]}
    if n < size:
        out = {k: np.concatenate([v, np.zeros((size - n,) + v.shape[1:], v.dtype)]) for k, v in out.items()}
    out["valid"] = np.arange(size) < n
    return out


def build_eval_batches(config, split: str = "val", subset: str | None = None,
                       temporal: bool | None = None) -> Iterator[dict]:
    """Finite, deterministic batches covering the WHOLE split (nothing dropped).

    ``subset`` selects one held-out folder of the real data (one of
    :data:`seg_jax.data.real.SUBSETS`); None means all
    subsets of the split (see :func:`seg_jax.data.sources.eval_subsets`). Yields {'image', 'mask', 'valid'}
    (+ 'ignore' where the source has ignore maps)
    with 'valid' bool (B,), B = ``config.eval_batch_size``; images are resized to ``config.data.image_size``
    (aspect ratio not kept). With ``config.max_eval_examples > 0`` only that many examples are used.
    """
    temporal = _is_temporal(config, temporal)
    src = sources.eval_source(config, split, subset, temporal)
    limit = int(config.max_eval_examples)
    ds = grain.MapDataset.source(src)
    if limit > 0:
        ds = ds[:limit]
    ds = ds.map(augment.EvalTransform(tuple(config.data.image_size), config.data.soft_targets,
                                      ignore=augment.carries_ignore(src)))
    it = ds.to_iter_dataset(grain.ReadOptions(num_threads=int(config.data.read_threads),
                                              prefetch_buffer_size=8))
    size = int(config.eval_batch_size)
    buf: list[dict] = []
    for ex in it:
        buf.append(ex)
        if len(buf) == size:
            yield _pad_batch(buf, size)
            buf = []
    if buf:
        yield _pad_batch(buf, size)
