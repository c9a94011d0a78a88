"""Measure input-pipeline throughput (examples/s) for still images and clips; writes JSON.

  python -m seg_jax.data.throughput --root ../shared/data --out runs/data_throughput.json --workers 0,2
  python -m seg_jax.data.throughput --pipelines grain,device --batch 32     # the on-accelerator path beside Grain

Reports, per (kind, workers): examples/s after a warm-up batch, at ``--size`` (default 256x256), batch 8,
clip length 4, with the paper's augmentations on, for source 'mixed' (real data) or 'synthetic' without --root.
"""
from __future__ import annotations

import json
import os
import time

from absl import app, flags

from seg_jax.common.writer import write_json
from seg_jax.configs import default
from seg_jax.data import pipeline


def measure(config, temporal: bool, batches: int = 10, warmup: int = 1) -> dict:
    """Examples/s (clips count as one example; frames/s = examples/s * T) of the training pipeline."""
    import jax

    device = config.data.pipeline == "device"
    if device:
        from seg_jax.data.device_pipeline import DeviceIterator
        it = DeviceIterator(config, 0, temporal)
    else:
        it = iter(pipeline.build_train_dataset(config, seed=0, temporal=temporal))
    for _ in range(warmup):
        jax.block_until_ready(next(it))
    start = time.perf_counter()
    for _ in range(batches):
        jax.block_until_ready(next(it))      # the device path is asynchronous: time finished batches
    secs = time.perf_counter() - start
    eps = batches * config.batch_size / secs
    return {"kind": "clips" if temporal else "images", "pipeline": "device" if device else "grain",
            "backend": jax.default_backend(), "workers": int(config.data.num_workers),
            "image_size": list(config.data.image_size), "batch_size": int(config.batch_size),
            "clip_length": int(config.data.clip_length) if temporal else 1, "source": config.data.source,
            "examples_per_s": round(eps, 2),
            "frames_per_s": round(eps * (config.data.clip_length if temporal else 1), 2),
            "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}


_ROOT = flags.DEFINE_string("root", "", "real data root (source 'mixed'); empty = synthetic")
_OUT = flags.DEFINE_string("out", "", "JSON output path")
_WORKERS = flags.DEFINE_list("workers", ["0"], "worker counts to try")
_SIZE = flags.DEFINE_integer("size", 256, "square image size")
_BATCHES = flags.DEFINE_integer("batches", 10, "timed batches per setting")
_BATCH = flags.DEFINE_integer("batch", 8, "batch size")
_PIPELINES = flags.DEFINE_list("pipelines", ["grain"], "grain (host cores) and/or device (jitted on the accelerator)")


def main(argv):
    del argv
    results = []
    settings = [(p, w) for p in _PIPELINES.value for w in (_WORKERS.value if p == "grain" else ["0"])]
    for temporal in (False, True):
        for pipeline_name, workers in settings:
            c = default.get_default_config()
            c.data.source = "mixed" if _ROOT.value else "synthetic"
            c.data.root = _ROOT.value
            c.data.synthetic_size = 256
            c.data.image_size = (_SIZE.value, _SIZE.value)
            c.data.num_workers = int(workers)
            c.data.pipeline = pipeline_name
            c.batch_size = _BATCH.value
            r = measure(c, temporal, _BATCHES.value)
            print(json.dumps(r))
            results.append(r)
    if _OUT.value:
        write_json(_OUT.value, {"pipeline": results}, indent=1, option="--out")


if __name__ == "__main__":
    app.run(main)
