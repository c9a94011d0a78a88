"""Do the trained cells fit the clips they trained on? Stream the cached train parts (no mirrored copies) through
a cells run's checkpoint and through the zero cells (the per-frame model), as the val clips are scored: if the cells
beat the per-frame model here and lose on val, the recipe overfits its few clips; if they lose here too, the cells
do not learn a useful use of time from this data at all.

    python -m research.cells_fit --workdir workdirs/convlstm_cells_slow --out workdirs/eval/cells_fit_slow.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="research.cells_fit", description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True, help="a research.train_cells run folder (cells.msgpack)")
    p.add_argument("--checkpoint", default="cells.msgpack", help="cells.msgpack (latest) or best_cells.msgpack")
    p.add_argument("--cache", default="workdirs/cell_cache")
    p.add_argument("--parts", default="davis_train,davis17,pseudo64x16_seed0")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    import jax

    from seg_jax.common.writer import write_json
    from seg_jax.convert.convlstm_warm_start import zero_cells
    from seg_jax.convert.init_from import load_init_variables
    from seg_jax.inference.segmenter import random_variables
    from seg_jax.training import cell_cache, cells, cells_loop

    path = os.path.join(a.workdir, a.checkpoint)
    if not os.path.isfile(path):
        print(f"research.cells_fit: error: {path} does not exist; run research.train_cells first", file=sys.stderr)
        return 2
    run = {}
    if os.path.isfile(os.path.join(a.workdir, "run.json")):        # written when the run finishes
        with open(os.path.join(a.workdir, "run.json")) as f:
            run = json.load(f)
    mobilenet = run.get("config", {}).get("mobilenet", "seg_jax/weights/mobilenet")
    active = tuple(run.get("config", {}).get("cells", (0, 1)))
    variables = zero_cells(load_init_variables(mobilenet, random_variables("convlstm")))
    trainable, other = cells.split_cells(variables["params"], active)
    step, trained, _ = cells_loop.load_checkpoint(path, trainable, None)
    stream = cells_loop.make_stream(cells.DecoderTail(cells=active, residual_cells=True))
    bn = variables["batch_stats"]["decoder"]
    models = {"per_frame": {"params": {**other, **trainable}, "batch_stats": bn},
              "cells": {"params": {**other, **jax.device_get(trained)}, "batch_stats": bn}}
    out = {"workdir": a.workdir, "checkpoint": a.checkpoint, "step": step, "parts": {}}
    for name in a.parts.split(","):
        folder = next((os.path.join(a.cache, d) for d in sorted(os.listdir(a.cache)) if d.startswith(name + "_")
                       and d[len(name) + 1:].replace("x", "").isdigit()), None)
        if folder is None:
            print(f"research.cells_fit: error: no cache part {name} under {a.cache}", file=sys.stderr)
            return 2
        part = cell_cache.CachePart(folder)
        out["parts"][name] = {m: cells_loop.stream_scores(stream, v, part) for m, v in models.items()}
        print(name, json.dumps(out["parts"][name]), flush=True)
    write_json(a.out, out, indent=1, option="--out")
    return 0


if __name__ == "__main__":
    sys.exit(main())
