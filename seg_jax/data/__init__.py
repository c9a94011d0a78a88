"""seg_jax data: random-access sources, the paper's augmentations and Grain pipelines.

Public API (what the trainer and evaluator call)::

    it = data.build_train_iterator(config, seed=config.seed, shard_index=0, shard_count=1)
    batch = next(it)           # {'image': uint8 (B,H,W,3), 'mask': uint8 (B,H,W,1)} or (B,T,H,W,C) clips
    state = it.get_state(); it.set_state(state)
    for batch in data.build_eval_batches(config, split="val", subset=None):   # + 'valid': bool (B,)
        ...

Masks are uint8 0..255 (255 = person; soft alpha where the data has it and ``data.soft_targets``).

Modules (one job each): ``io`` (decoding + bad-input policy), ``folder`` (images/ + masks/ and Kaggle layouts,
splits), ``clips`` (DAVIS-style videos, clip index arithmetic), ``synthetic`` (data made in code),
``composite`` (foregrounds on backgrounds, exact masks; pseudo-video), ``pseudo_video`` (smooth paths, camera
clips), ``augment`` (the paper's augmentations as Grain transforms), ``real`` (the shared real data and its
FIXED held-out split; ``real.heldout_files`` lists full-resolution originals), ``sources`` (config -> sources),
``pipeline`` (Grain), ``tfds_person_segmentation`` (TFDS ArrayRecord builder), ``preview`` and ``throughput``
(command-line tools).
"""
from seg_jax.data.io import BadInputError
from seg_jax.data.pipeline import build_eval_batches, build_train_dataset, build_train_iterator
from seg_jax.data.real import (
    CAMVID,
    EVAL_SUBSETS,
    HELDOUT,
    NEGATIVES,
    SCORED_SUBSETS,
    SUBSETS,
    heldout_files,
    read_heldout,
)

__all__ = ["BadInputError", "CAMVID", "EVAL_SUBSETS", "HELDOUT", "NEGATIVES", "SCORED_SUBSETS", "SUBSETS",
           "build_eval_batches",
           "build_train_dataset", "build_train_iterator", "heldout_files", "read_heldout"]
