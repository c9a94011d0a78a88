"""Run the cells-only recipe for model 3 (issue 47): cache features, train cells, write a candidate weights folder.

    nice -n 10 python -m research.train_cells --config configs/convlstm_cells.py --workdir workdirs/convlstm_cells

Writes ``<workdir>/weights/`` (a model-3 weights folder holding the cells of the best val evaluation,
``residual_cells`` on, ``cells: {"kind": "trained", ...}`` in its manifest), ``<workdir>/history.jsonl`` (loss
and val-clip scores over the steps) and ``<workdir>/run.json``. The same command resumes a stopped run; after
the run, ``--config.export=latest`` writes the last step's cells to ``<workdir>/weights_latest/`` instead. Evaluate
the candidate as the user runs it:
``python -m seg_jax.evaluate --model convlstm --checkpoint <workdir>/weights --split val --peers none``.
"""
from __future__ import annotations

import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import write_json

PROG = "research.train_cells"
config_flags.DEFINE_config_file("config", "configs/convlstm_cells.py", "The recipe's config.")
flags.DEFINE_string("workdir", None, "Run folder (checkpoints, history, the candidate weights).")


def _sources(config, mobilenet_vars, weights_sha):
    """(train parts, their sampling weights, val part), building each cache part that is missing or stale (made
    from other weights or another clip list: a split changed)."""
    from seg_jax.data import composite, real
    from seg_jax.training import cell_cache

    root, size = config.data_root, tuple(config.size)

    def names(seqs):
        return {"weights": weights_sha, "clips": [s.name for s in seqs]}

    def sequences(seqs, flip):
        def gen():
            for s in seqs:
                frames, masks = cell_cache.read_sequence(s, flip)
                yield s.name + ("-flip" if flip else ""), frames, masks
        return gen(), sum(len(s) for s in seqs)

    def part(name, made, source):
        clips, total = made
        folder = os.path.join(config.cache, f"{name}_{size[0]}x{size[1]}")
        t0 = time.perf_counter()
        cell_cache.build_part(folder, mobilenet_vars, clips, total, size, source)
        print(f"cache {name}: {folder} ({time.perf_counter() - t0:.0f} s)", flush=True)
        return cell_cache.CachePart(folder)

    davis = real.davis_sequences(root, "train")
    davis17 = real.davis17_sequences(root)
    fgs, probs = real.foregrounds(root)
    pseudo = composite.CompositeSource(fgs, real.backgrounds(root), (2 * size[0], 2 * size[1]),
                                       size=config.pseudo_clips, seed=int(config.seed),
                                       clip_length=config.pseudo_length,
                                       foreground_probabilities=probs)

    def pseudo_clips():
        for i in range(len(pseudo)):
            ex = pseudo[i]
            yield f"pseudo-{i}", ex["image"], ex["mask"]

    parts = [part("davis_train", sequences(davis, False), {"davis": "train", "flip": False, **names(davis)}),
             part("davis_train_flip", sequences(davis, True), {"davis": "train", "flip": True, **names(davis)}),
             part("davis17", sequences(davis17, False), {"davis17": "all", "flip": False, **names(davis17)}),
             part("davis17_flip", sequences(davis17, True), {"davis17": "all", "flip": True, **names(davis17)}),
             part(f"pseudo{config.pseudo_clips}x{config.pseudo_length}_seed{config.seed}",
                  (pseudo_clips(), config.pseudo_clips * config.pseudo_length),
                  {"composite_clips": config.pseudo_clips, "length": config.pseudo_length, "seed": config.seed,
                   "weights": weights_sha})]
    w = config.weights
    weights = [w.davis / 2, w.davis / 2, w.davis17 / 2, w.davis17 / 2, w.pseudo]
    val_seqs = real.davis_sequences(root, "val")
    val = part("davis_val", sequences(val_seqs, False), {"davis": "val", **names(val_seqs)})
    return parts, weights, val


def run(config, workdir: str) -> str:
    import jax

    from seg_jax.artifacts import model_io, weights_folder
    from seg_jax.convert.convlstm_warm_start import zero_cells
    from seg_jax.convert.init_from import load_init_variables
    from seg_jax.inference.segmenter import random_variables
    from seg_jax.training import cells_loop

    os.makedirs(workdir, exist_ok=True)
    mobilenet_vars, manifest = model_io.load_weights("mobilenet", config.mobilenet)
    parts, weights, val = _sources(config, mobilenet_vars, manifest.get("sha256"))
    variables = zero_cells(load_init_variables(config.mobilenet, random_variables("convlstm")))
    t0 = time.perf_counter()
    out = cells_loop.train(config, workdir, variables, parts, weights, val, log=lambda m: print(m, flush=True))
    seconds = time.perf_counter() - t0
    if not out["finished"]:
        return ""
    trained = cells_loop.assemble(variables, out["cells"])
    model_config = {**manifest["model"], "name": "convlstm", "residual_cells": True}
    command = "python -m research.train_cells " + " ".join(sys.argv[1:])
    extra = {k: manifest[k] for k in ("input_size", "keep_aspect", "input", "output") if k in manifest}
    extra["settle_steps"] = 0                          # trained from a zero state at each clip start
    extra["cells"] = {"kind": "trained", "command": command,
                      "data": "DAVIS train sequences + DAVIS-2017 person clips (each also mirrored), "
                              f"{config.pseudo_clips} composite pseudo-video clips of {config.pseudo_length} frames; "
                              f"cached U-Net MobileNet features at {config.size[0]}x{config.size[1]}",
                      "sequence_length": int(config.chunk),
                      "streams": f"whole clips played back to back in {config.lanes} lanes, the state carried "
                                 f"across {config.chunk}-frame chunks and reset at clip starts",
                      "steps": int(config.num_steps), "selected_step": int(out["best"]["step"]),
                      "trained_cells": list(config.cells),
                      "from": str(config.mobilenet), "from_sha256": manifest.get("sha256")}
    latest = config.get("export", "best") == "latest"
    if latest:
        extra["cells"]["selected_step"] = int(config.num_steps)
    out_dir = os.path.join(workdir, "weights_latest" if latest else "weights")
    weights_folder.save_weights(out_dir, model_config, jax.device_get(trained), extra)
    write_json(os.path.join(workdir, "run.json"),
               {"config": config.to_dict(), "seconds_this_session": seconds, "command": command}, indent=1,
               option="--workdir")
    return out_dir


def main(_):
    f = flags.FLAGS
    if not f.workdir:
        fail(PROG, "--workdir is required (e.g. --workdir workdirs/convlstm_cells)")
    try:
        out = run(f.config, f.workdir)
    except (FileNotFoundError, ValueError, OSError) as e:
        fail(PROG, str(e).splitlines()[0] if str(e) else type(e).__name__)
    if out:
        print(f"wrote candidate weights to {out}")


if __name__ == "__main__":
    app.run(main)
