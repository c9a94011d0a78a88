"""Benchmark section 'datapath': the on-accelerator data path alone and a whole training iteration on it.

Per training model, at ``train_size`` and ``train_batch``: examples/s of
- ``data``: :func:`seg_jax.data.device_augment.device_batch` alone (the batch drawn and augmented on the device),
- ``step``: the project's jitted train step alone on a fixed batch,
- ``data+step``: both, as the train loop runs them (a fresh augmented batch every step),
and ``data_over_step`` (how many times faster the data path is than the step: the loop is never input-bound
when it is well above 1). The packed arrays are random uint8 of the shapes a real run packs (``pairs`` stills
at 1.5x the training size, 119 backgrounds and, for clip models, a DAVIS-sized video); timing does not depend
on their content. A clip counts as one example of ``clip_length`` frames.
"""
from __future__ import annotations

import numpy as np

from seg_jax.bench.sections_batch import _train_step, train_models
from seg_jax.bench.timing import time_calls
from seg_jax.data.device_augment import device_batch
from seg_jax.data.device_pipeline import pack_size
from seg_jax.models import get_spec

PACKED_PAIRS = 512          # stills in the synthetic pack (the real train split has ~2,100)
PACKED_BACKGROUNDS = 119
PACKED_VIDEO_FRAMES = 64
# The accelerator bar of the training issue: U-Net MobileNet examples/s at 256x256 and the data path's margin
GPU_BAR = {"model": "mobilenet", "examples_per_s": 5000.0, "data_over_step": 3.0}


def _packed_arrays(size: int, temporal: bool, rng: np.random.Generator) -> dict:
    import jax
    arrays = {"images": rng.integers(0, 256, (PACKED_PAIRS, size, size, 3), dtype=np.uint8),
              "masks": rng.integers(0, 256, (PACKED_PAIRS, size, size, 1), dtype=np.uint8),
              "backgrounds": rng.integers(0, 256, (PACKED_BACKGROUNDS, size, size, 3), dtype=np.uint8)}
    if temporal:
        width = (size * 16 // 9) // 8 * 8
        arrays["clip_frames"] = rng.integers(0, 256, (PACKED_VIDEO_FRAMES, size, width, 3), dtype=np.uint8)
        arrays["clip_masks"] = rng.integers(0, 256, (PACKED_VIDEO_FRAMES, size, width, 1), dtype=np.uint8)
        arrays["clip_starts"] = np.arange(PACKED_VIDEO_FRAMES - 8, dtype=np.int32)
    return jax.device_put(arrays)


def datapath(runner) -> list[dict]:
    """Rows of examples/s (data alone, step alone, both) per training model at ``train_size``."""
    import jax

    o, rows = runner.o, []
    models = train_models(o)
    h, w = o.train_size
    b = o.train_batch
    rng = np.random.default_rng(o.seed)
    key = jax.random.PRNGKey(o.seed)
    for name in models:
        temporal = get_spec(name).temporal
        clip_length = o.clip_length if temporal else 0
        real_clips = b // 2 if temporal else 0
        arrays = _packed_arrays(pack_size((h, w)), temporal, rng)
        counter = {"step": 0}

        def draw():
            counter["step"] += 1
            return device_batch(arrays, key, counter["step"], batch_size=b, out_hw=(h, w),
                                clip_length=clip_length, real_clips=real_clips)
        data = time_calls(lambda: jax.block_until_ready(draw()), warmup=2, iters=o.train_iters, items=b)
        step_fn, state, impl = _train_step(runner, name, runner.model(name, "float32"), "float32")
        step = jax.jit(step_fn, donate_argnums=(0,))
        fixed = draw()
        box = {"state": state}

        def one_step(batch):
            box["state"], metrics = step(box["state"], batch)
            jax.block_until_ready(metrics)
        step_alone = time_calls(lambda: one_step(fixed), warmup=1, iters=o.train_iters, items=b)
        both = time_calls(lambda: one_step(draw()), warmup=1, iters=o.train_iters, items=b)
        row = {"model": name, "input": [h, w], "batch": b, "clip_length": max(1, clip_length),
               "real_clips_per_batch": real_clips, "impl": impl, "backend": jax.default_backend(),
               "data_examples_per_s": round(data["items_per_s"], 2),
               "step_examples_per_s": round(step_alone["items_per_s"], 2),
               "examples_per_s": round(both["items_per_s"], 2),
               "data_over_step": round(data["items_per_s"] / step_alone["items_per_s"], 2),
               "data_ms": data["median_ms"], "step_ms": step_alone["median_ms"], "data_step_ms": both["median_ms"]}
        if name == GPU_BAR["model"] and (h, w) == (256, 256):
            row["bar"] = dict(GPU_BAR)
            row["meets_bar"] = bool(row["examples_per_s"] >= GPU_BAR["examples_per_s"]
                                    and row["data_over_step"] >= GPU_BAR["data_over_step"])
        rows.append(row)
        runner.log(f"datapath {name:9s} b{b} data {row['data_examples_per_s']:8.1f}/s  step "
                   f"{row['step_examples_per_s']:8.1f}/s  data+step {row['examples_per_s']:8.1f}/s "
                   f"(data/step {row['data_over_step']:.1f}x)")
    return rows
