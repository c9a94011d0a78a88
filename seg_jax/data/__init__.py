"""seg_jax data: random-access sources, the paper's augmentations and Grain pipelines.

Public API (what the trainer and evaluator call)::

    it = data.build_train_iterator(config, seed=config.seed, shard_index=0, shard_count=1)
    batch = next(it)           # {'image': uint8 (B,H,W,3), 'mask': uint8 (B,H,W,1)} or (B,T,H,W,C) clips
    state = it.get_state(); it.set_state(state)
    for batch in data.build_eval_batches(config, split="val", subset=None):   # + 'valid': bool (B,)
        ...

Masks are uint8 0..255 (255 = person; soft alpha where the data has it and ``data.soft_targets``).
"""
from seg_jax.data.io import BadInputError
from seg_jax.data.pipeline import build_eval_batches, build_train_dataset, build_train_iterator

__all__ = ["BadInputError", "build_eval_batches", "build_train_dataset", "build_train_iterator"]
