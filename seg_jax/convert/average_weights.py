"""Average the variables of several checkpoints of one model into a weights folder (checkpoint averaging).

    python -m seg_jax.convert.average_weights --model mobilenet --out runs/avg \\
        workdirs/run workdirs/run/checkpoints/latest

Every source is anything :func:`seg_jax.model_io.read_weights` takes (a weights folder, a training workdir = its
best checkpoint, ``<workdir>/checkpoints/latest``); parameters and BatchNorm statistics are averaged leaf by leaf
with equal weights. The manifest names the sources.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import jax
import numpy as np


def average_variables(variables: Sequence[dict]) -> dict:
    """The leaf-wise mean of pytrees of the same structure ({'params', 'batch_stats'})."""
    if not variables:
        raise ValueError("nothing to average: give at least one checkpoint")
    return jax.tree_util.tree_map(lambda *leaves: np.mean([np.asarray(x, np.float32) for x in leaves], axis=0)
                                  .astype(np.asarray(leaves[0]).dtype), *variables)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.convert.average_weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="weights folders, training workdirs or <workdir>/checkpoints/latest")
    p.add_argument("--model", required=True, help="mobilenet | convlstm | unet")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--input_size", default="256x256", help="default inference size HxW for the manifest")
    a = p.parse_args(argv)
    from seg_jax import model_io, weights_folder
    from seg_jax.configs.sizes import parse_size
    try:
        size = parse_size(a.input_size, flag="input_size")
        loaded = [model_io.load_weights(a.model, s) for s in a.sources]
    except (FileNotFoundError, ValueError) as e:
        print(f"seg_jax.convert.average_weights: error: {e}", file=sys.stderr)
        return 2
    averaged = average_variables([v for v, _ in loaded])
    model_config = dict(loaded[0][1].get("model") or {"name": a.model}, name=a.model, depthwise_impl="auto")
    extra = {"input_size": [int(v) for v in size], "keep_aspect": True,
             "input": "RGB float in [0, 1] (uint8 / 255), NHWC; the Segmenter does this for you",
             "output": "logits (N, H, W, 1); sigmoid -> person probability",
             "averaged_from": [info.get("checkpoint") or str(s) for s, (_, info) in zip(a.sources, loaded)]}
    out = weights_folder.save_weights(Path(a.out), model_config, averaged, extra)
    print(f"averaged {len(loaded)} checkpoints of {a.model} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
