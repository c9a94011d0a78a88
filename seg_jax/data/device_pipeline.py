"""``config.data.pipeline = 'device'``: the training iterator that decodes the train split once, keeps it as
uint8 arrays on the accelerator and draws every batch with :func:`seg_jax.data.device_augment.device_batch`.

It has the Grain iterator's interface (``next(it)``, ``it.get_state()``, ``it.set_state(state)``), so the train
loop is unchanged; its state is the number of batches drawn, and a batch depends only on (seed, that number), so a
resumed run continues on exactly the next batch. Sources: 'mixed' (every still source's train pairs, drawn by
``config.data.real_weights`` between the sources, on the shared backgrounds), 'folder' (its train pairs, on each
other's photos) and 'synthetic'. Temporal models get pseudo-video clips made from the stills and, with 'mixed',
real DAVIS train clips held as arrays too: ``config.data.weights`` davis : pseudo_video sets how many of each
batch's clips are real.
"""
from __future__ import annotations

import jax
import numpy as np

from seg_jax.data import composite, device_augment, folder, io, real, synthetic


def _subset_weights(config, counts: dict[str, int]) -> np.ndarray:
    """(N,) float32 sampling probabilities: each subset's ``config.data.real_weights`` share split evenly over
    its pairs (subsets without a weight share equally with weight 1)."""
    shares = {sub: float(config.data.real_weights.get(sub, 1.0)) for sub in counts}
    total = sum(shares[sub] for sub, n in counts.items() if n)
    if total <= 0:
        raise ValueError("config.data.real_weights are all 0 for the subsets that have train pairs")
    weights = np.concatenate([np.full(n, shares[sub] / total / n, np.float64) for sub, n in counts.items() if n])
    return (weights / weights.sum()).astype(np.float32)


def _train_examples(config) -> tuple[list[dict], list[np.ndarray], np.ndarray | None]:
    """-> (decoded train pairs, background images, per-pair sampling probabilities or None) of
    ``config.data``'s source."""
    source = config.data.source
    if source == "mixed":
        root = config.data.root
        if not root:
            raise ValueError("data.pipeline='device' with data.source='mixed' needs --config.data.root")
        listed = {sub: real.pairs(root, sub, "train") for sub in real.STILL_SUBSETS}
        pairs = folder.PairSource([p for sub in listed.values() for p in sub], "mixed:train")
        examples = [pairs[i] for i in range(len(pairs))]
        backgrounds = [composite.load_background(p, 1024) for p in real.backgrounds(root)]
        return examples, backgrounds, _subset_weights(config, {sub: len(v) for sub, v in listed.items()})
    if source == "folder":
        root = config.data.folder or config.data.root
        pairs = folder.PairSource(folder.split_pairs(root, "train", config.data.val_fraction,
                                                     config.data.test_fraction), "folder:train")
        examples = [pairs[i] for i in range(len(pairs))]
        return examples, [ex["image"] for ex in examples], None
    if source == "synthetic":
        src = synthetic.SyntheticSource(int(config.data.synthetic_size), tuple(config.data.image_size), seed=0)
        examples = [src[i] for i in range(len(src))]
        return examples, [ex["image"] for ex in examples], None
    raise ValueError(f"data.pipeline='device' supports data.source mixed, folder or synthetic, not {source!r}; "
                     "use data.pipeline='grain'")


def real_clip_count(config, batch_size: int) -> int:
    """How many of a batch's clips are real video: ``batch_size`` x davis / (davis + pseudo_video), rounded."""
    w = config.data.weights
    total = float(w.davis) + float(w.pseudo_video)
    return int(round(batch_size * float(w.davis) / total)) if total > 0 else 0


def _video_arrays(config, height: int) -> dict[str, np.ndarray]:
    """The DAVIS train sequences of ``config.data.root``, decoded and packed (:func:`device_augment.pack_videos`)."""
    sequences = real.davis_sequences(config.data.root, "train")
    if not sequences:
        raise io.BadInputError(f"data.pipeline='device': no DAVIS train sequences under {config.data.root}/davis; "
                               "set --config.data.weights.davis=0 to train on pseudo-video alone")
    decoded = [[io.read_pair(f, m) for f, m in zip(seq.frames, seq.masks)] for seq in sequences]
    return device_augment.pack_videos(decoded, int(config.data.clip_length), height,
                                      int(config.data.clip_stride))


def pack_size(image_size) -> int:
    """Side of the packed squares: 1.5x the training size (room to zoom in), a multiple of 8."""
    return int(np.ceil(1.5 * max(image_size) / 8) * 8)


class DeviceIterator:
    """Infinite batches ``{'image', 'mask'}`` uint8 of ``batch_size // shard_count`` examples (clips of
    ``config.data.clip_length`` frames for temporal models), drawn and augmented on the default device."""

    def __init__(self, config, seed: int, temporal: bool, shard_index: int = 0, shard_count: int = 1,
                 aug: device_augment.DeviceAugment | None = None):
        examples, backgrounds, weights = _train_examples(config)
        if not examples:
            raise io.BadInputError("data.pipeline='device': the train split has no pairs")
        size = pack_size(config.data.image_size)
        packed = device_augment.pack_pairs(examples, size)
        bg = device_augment.pack_pairs([{"image": b, "mask": np.zeros(b.shape[:2] + (1,), np.uint8)}
                                        for b in backgrounds], size)["images"]
        arrays = {"images": packed["images"], "masks": packed["masks"], "backgrounds": bg}
        if weights is not None:
            arrays["weights"] = weights
        self.key = jax.random.fold_in(jax.random.PRNGKey(int(seed)), int(shard_index))
        self.batch_size = int(config.batch_size) // int(shard_count)
        self.out_hw = tuple(int(v) for v in config.data.image_size)
        self.clip_length = int(config.data.clip_length) if temporal else 0
        self.clip_stride = int(config.data.clip_stride)
        self.real_clips = real_clip_count(config, self.batch_size) if temporal and config.data.source == "mixed" else 0
        if self.real_clips:
            arrays.update(_video_arrays(config, size))
        self.arrays = jax.device_put(arrays)
        self.aug = aug or device_augment.DeviceAugment()
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        batch = device_augment.device_batch(self.arrays, self.key, self.step, batch_size=self.batch_size,
                                            out_hw=self.out_hw, clip_length=self.clip_length, aug=self.aug,
                                            real_clips=self.real_clips, clip_stride=self.clip_stride)
        self.step += 1
        return batch

    def get_state(self) -> dict:
        return {"pipeline": "device", "step": self.step}

    def set_state(self, state: dict) -> None:
        if state.get("pipeline") != "device":
            raise ValueError("this checkpoint's data state is not the device pipeline's; resume with "
                             "--config.data.pipeline=grain or train in a new --workdir")
        self.step = int(state["step"])


__all__ = ["DeviceIterator", "pack_size", "real_clip_count"]
