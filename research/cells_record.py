"""Assemble ``results/training/convlstm_cells_streamed.json`` (issue 47) from the two runs' workdirs and their
evaluation JSONs.

    python -m research.cells_record   # after research.train_cells, research.eval_cells and seg_jax.evaluate
"""
from __future__ import annotations

import json
import os

from seg_jax.common.writer import write_json

TRAIN = "python -m research.train_cells --config configs/convlstm_cells.py"
RUNS = (("stream", "workdirs/convlstm_cells", f"{TRAIN} --workdir workdirs/convlstm_cells"),
        ("stream_steady", "workdirs/convlstm_cells_steady",
         f"{TRAIN}:steady --config.num_steps=90 --config.eval_every=30 --workdir workdirs/convlstm_cells_steady"))
BASELINE = "python -m seg_jax.evaluate --model mobilenet,convlstm --split val --subsets davis --peers none --nofps"


def _load(path: str):
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _history(path: str) -> dict:
    with open(path) as f:
        rows = [json.loads(line) for line in f]
    return {"val_clip_network_res": [r for r in rows if "val" in r], "loss": [r for r in rows if "loss" in r]}


def _compact(evaluation: dict) -> dict:
    """The full-resolution DAVIS row of each model of a seg_jax.evaluate JSON, without the per-image lists."""
    out = {}
    for r in evaluation["results"]:
        row = dict(r["full_res"]["davis"])
        row.pop("per_image", None)
        out[r["model"]] = row
    return out


def main() -> None:
    runs = {}
    for name, workdir, command in RUNS:
        if not os.path.isdir(workdir):
            continue
        r = {"command": command, "workdir": workdir, **_history(os.path.join(workdir, "history.jsonl"))}
        run = _load(os.path.join(workdir, "run.json"))
        if run:
            r["config"], r["train_seconds"] = run["config"], run["seconds_this_session"]
        manifest = _load(os.path.join(workdir, "weights", "manifest.json"))
        if manifest:
            r["candidate"] = {"path": os.path.join(workdir, "weights"), "sha256": manifest["sha256"],
                              "cells": manifest["cells"]}
        for split in ("val", "test"):
            scores = _load(f"workdirs/eval/{name}_{split}.json")
            if scores:
                r[f"network_res_{split}"] = scores
        segmenter = _load(f"workdirs/eval/{name}_segmenter_val_davis.json")
        if segmenter:
            r["segmenter_val_davis"] = _compact(segmenter)
        runs[name] = r
    base = _load("workdirs/eval/base_segmenter_val_davis.json")
    out = {"issue": 47,
           "hardware": "2-core AMD EPYC CPU (shared VM, load average 8-22 during the runs), float32, jax CPU",
           "recipe": "U-Net MobileNet frozen (seg_jax/weights/mobilenet); features cached once per frame at 160x288; "
                     "only ConvLSTM cells 0 and 1 trained (residual form from zero = the per-frame model), cells 2 "
                     "and 3 zero; 4 lanes of whole clips x 8-frame chunks, state carried across chunks, reset at "
                     "clip starts; BCE + Dice",
           "data": "DAVIS train sequences (6) + DAVIS-2017 person clips (2), each also mirrored (1,142 frames); 64 "
                   "composite pseudo-video clips of 16 frames (1,024 frames); backwards p 0.5, stride 2 p 0.3",
           "runs": runs,
           "segmenter_val_davis_baselines": _compact(base) if base else None,
           "baseline_command": BASELINE}
    write_json("results/training/convlstm_cells_streamed.json", out, indent=1)
    print("wrote results/training/convlstm_cells_streamed.json:", ", ".join(runs))


if __name__ == "__main__":
    main()
