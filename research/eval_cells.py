"""Score a cells-only candidate against the per-frame model at the network's resolution (cheap; before the
Segmenter's full-resolution protocol, which is ``python -m seg_jax.evaluate``).

    python -m research.eval_cells --candidate workdirs/convlstm_cells/weights --split val \\
        --out results/training/convlstm_cells_network_val.json

Both models are the same network with different cells: the per-frame U-Net MobileNet is the candidate with its cells
zeroed (residual form). Video: every DAVIS clip of the split streamed from a reset at the size the Segmenter runs it
(160x288), Dice pooled over the frames, flicker and dtSSD (:mod:`seg_jax.evaluation.metrics_temporal`) of the
probabilities against the mask brought to that size. Stills: every held-out still of each source, one step from a
reset at its Segmenter size (:func:`seg_jax.inference.sizes.choose_input_size`), pooled Dice. No guided upsample
and no stabiliser, so the numbers isolate what the cells do.
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.configs.default import DEFAULT_DATA_ROOT


def _pooled(sums) -> float:
    inter, total = sums
    return 2 * inter / max(total, 1e-9)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="research.eval_cells")
    p.add_argument("--candidate", required=True, help="Model-3 weights folder with residual cells.")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--data_root", default=DEFAULT_DATA_ROOT)
    p.add_argument("--cache", default="workdirs/cell_cache")
    p.add_argument("--stills", type=int, default=0, help="At most this many stills per source (0: all).")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    from seg_jax.artifacts import model_io
    from seg_jax.common.writer import write_json
    from seg_jax.convert.convlstm_warm_start import zero_cells
    from seg_jax.data import io, real
    from seg_jax.evaluation.metrics_temporal import DtSSDMeter, FlickerMeter
    from seg_jax.inference.sizes import choose_input_size
    from seg_jax.inference.streaming import preprocess
    from seg_jax.ops.resize import resize
    from seg_jax.training import cell_cache, cells, cells_loop

    try:
        variables, manifest = model_io.load_weights("convlstm", a.candidate)
    except (FileNotFoundError, ValueError) as e:
        print(f"research.eval_cells: error: {e}", file=sys.stderr)
        return 2
    if not manifest["model"].get("residual_cells"):
        print("research.eval_cells: error: the candidate's cells are not residual; this comparison zeroes them to "
              "get the per-frame model, which only holds for residual cells", file=sys.stderr)
        return 2
    active = tuple(i for i in range(4) if any(bool(jnp.any(x != 0)) for x in
                                            jax.tree_util.tree_leaves(variables["params"]["decoder"][f"convlstm_{i}"])))
    models = {"mobilenet": zero_cells(variables), "candidate": variables}
    tail = cells.DecoderTail(cells=active, residual_cells=True)
    stream = cells_loop.make_stream(tail)
    dec = {name: {"params": v["params"]["decoder"], "batch_stats": v["batch_stats"]["decoder"]}
           for name, v in models.items()}

    # Video: DAVIS clips of the split, from the feature cache (built here when missing).
    seqs = real.davis_sequences(a.data_root, a.split)
    size = (160, 288)
    folder = os.path.join(a.cache, f"davis_{a.split}_{size[0]}x{size[1]}")

    def clips():
        for s in seqs:
            frames, masks = cell_cache.read_sequence(s)
            yield s.name, frames, masks
    cell_cache.build_part(folder, models["mobilenet"], clips(), sum(len(s) for s in seqs), size,
                          {"davis": a.split, "weights": manifest.get("cells", {}).get("from_sha256"),
                           "clips": [s.name for s in seqs]})
    part = cell_cache.CachePart(folder)
    result = {"candidate": a.candidate, "split": a.split, "active_cells": list(active), "size": list(size),
              "davis": {}, "stills": {}}
    for name in models:
        sums, flick, dt = [0.0, 0.0], FlickerMeter(), DtSSDMeter()
        for clip in part.clips:
            state = cells.zero_state(1, *size)
            flick.reset()
            dt.reset()
            for s in range(clip["start"], clip["start"] + clip["length"], 8):
                rows = np.arange(s, min(s + 8, clip["start"] + clip["length"]))
                resets = np.zeros((1, len(rows)), bool)
                resets[0, 0] = s == clip["start"]
                state, probs = stream(dec[name], state, cells.CellInputs(*(x[None] for x in part.inputs(rows))),
                                      jnp.asarray(resets))
                for prob, mask in zip(np.asarray(probs[0]), part.masks(rows)):
                    target = mask.astype(np.float32) / 255.0
                    sums[0] += float(np.sum(prob * target))
                    sums[1] += float(np.sum(prob) + np.sum(target))
                    flick.update(prob, (target >= 0.5).astype(np.uint8) * 255)
                    dt.update(prob, target)
        result["davis"][name] = {"dice": _pooled(sums), "flicker": flick.value, "dtssd": dt.value}
        print(name, "davis", result["davis"][name], flush=True)

    # Stills: one step from a reset at the Segmenter's size for each image.
    base = tuple(manifest.get("input_size", (256, 256)))
    feats_fn = jax.jit(lambda v, x: cells.frozen_inputs(v, x))
    tail_fn = jax.jit(lambda d, state, inputs: tail.apply(d, state, inputs))
    for subset in real.STILL_SUBSETS:
        pairs = real.pairs(a.data_root, subset, a.split)[: a.stills or None]
        sums = {name: [0.0, 0.0] for name in models}
        for pair in pairs:
            ex = io.read_pair(pair.image_path, pair.mask_path)
            hw = choose_input_size(ex["image"].shape[:2], base)
            _, small = preprocess(jnp.asarray(ex["image"]), hw)
            target = np.asarray(resize(jnp.asarray(ex["mask"][..., 0], jnp.float32) / 255.0, hw, antialias=True))
            inputs = feats_fn(models["mobilenet"], small)
            for name in models:
                _, logits = tail_fn(dec[name], cells.zero_state(1, *hw), inputs)
                prob = np.asarray(jax.nn.sigmoid(logits[0, ..., 0]))
                sums[name][0] += float(np.sum(prob * target))
                sums[name][1] += float(np.sum(prob) + np.sum(target))
        result["stills"][subset] = {name: _pooled(s) for name, s in sums.items()} | {"images": len(pairs)}
        print(subset, result["stills"][subset], flush=True)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    write_json(a.out, result, indent=1, option="--out")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
