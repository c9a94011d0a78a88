"""Sweep the stabiliser's settings on real video: flicker, dtSSD and Dice per (strength, motion).

    python -m research.tune_stabilise --data_root ../shared/data --splits train,val --out results/tuning/stabilise.json

The network runs once per frame (the Segmenter's shipped inference size and refinement); each setting then
re-runs only the stabiliser and the edge-aware upsample on the stored probabilities, so a grid costs little
more than one pass. Settings are chosen on clips the test split does not hold; the chosen one is then scored
on the test clips by ``seg_jax.evaluation.evaluate`` like any other change.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.configs.default import DEFAULT_DATA_ROOT
from seg_jax.ops.stabilise import Stabilise, initial_hold_state, stabilise


def davis_clip_files(data_root: str, splits: str) -> list[dict]:
    """The DAVIS clips of ``splits`` (comma separated), frames in stream order; ValueError naming the problem
    when the data root is unreadable or holds none."""
    from seg_jax import data
    from seg_jax.data.io import BadInputError
    try:
        files = [f for split in splits.split(",") for f in data.heldout_files(data_root, split, "davis")]
    except (BadInputError, KeyError) as e:
        raise ValueError(str(e)) from None
    if not files:
        raise ValueError(f"no DAVIS clips under {data_root}/davis for splits {splits}; pass --data_root")
    return files


def network_pass(segmenter, files):
    """-> per sequence: list of (small frame (h, w, 3), probabilities (h, w), full frame, true mask)."""
    from seg_jax.data.io import read_pair
    sequences: dict[str, list] = {}
    state, state_size = None, None
    for entry in files:
        pair = read_pair(entry["image_path"], entry["mask_path"])
        frames = sequences.setdefault(entry["sequence"], [])
        if not frames:
            state = None
        frame = jnp.asarray(pair["image"])
        size = segmenter.input_size_for(frame.shape[:2])
        step = segmenter.streaming_step(size)
        if state is None or state_size != size:
            state, state_size = step.init_state(frame), size
        small = step._pre(frame)
        state, prob = step._net(step.params, state, small)
        frames.append((small, prob, frame, pair["mask"][..., 0]))
    return sequences, step


def score(sequences, step, settings: Stabilise) -> dict[str, float]:
    """Flicker / dtSSD over all sequences and mean Dice at 0.5, with ``settings`` applied."""
    from seg_jax.evaluation.metrics_temporal import DtSSDMeter, FlickerMeter
    hold = jax.jit(lambda p, s, st: stabilise(p, s, st, settings))
    flicker, dtssd, dice = FlickerMeter(), DtSSDMeter(), []
    for frames in sequences.values():
        flicker.reset()
        dtssd.reset()
        hold_state = initial_hold_state(frames[0][0].shape[1:3])
        for small, prob, frame, mask in frames:
            if settings.enabled:
                hold_state, prob = hold(prob, small[0], hold_state)
            alpha = np.asarray(step._post(prob, small, frame), np.float32)
            flicker.update(alpha, mask)
            dtssd.update(alpha, mask)
            pred, true = alpha >= 0.5, mask >= 128
            dice.append(2 * np.sum(pred & true) / max(int(pred.sum() + true.sum()), 1))
    return {"flicker": flicker.value, "dtssd": dtssd.value, "dice": float(np.mean(dice))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="mobilenet")
    parser.add_argument("--checkpoint", default=None, help="weights folder (default: the shipped weights)")
    parser.add_argument("--data_root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--splits", default="train,val", help="DAVIS splits to sweep on (comma separated)")
    parser.add_argument("--strengths", default="0,0.8,0.85,0.9,0.95")
    parser.add_argument("--motions", default="0.1,0.15,0.2,0.3")
    parser.add_argument("--tracks", default="0,1", help="camera-shift tracking off/on (Stabilise.track): 0, 1 or 0,1")
    parser.add_argument("--out", default="", help="write the table as JSON here")
    args = parser.parse_args(argv)
    from seg_jax.inference.segmenter import Segmenter
    try:
        files = davis_clip_files(args.data_root, args.splits)
    except ValueError as e:
        print(f"tune_stabilise: {e}", file=sys.stderr)
        return 2
    segmenter = Segmenter(args.model, args.checkpoint, stabilise=Stabilise())
    sequences, step = network_pass(segmenter, files)
    rows = []
    for strength, motion, track in itertools.product(map(float, args.strengths.split(",")),
                                                     map(float, args.motions.split(",")),
                                                     (bool(int(t)) for t in args.tracks.split(","))):
        if strength == 0 and any(r["strength"] == 0 for r in rows):
            continue
        settings = Stabilise(strength, motion, track=track and strength > 0)
        row = {"strength": strength, "motion": motion, "track": settings.track, **score(sequences, step, settings)}
        rows.append(row)
        print(f"strength {strength:.2f} motion {motion:.3f} track {int(settings.track)}: flicker {row['flicker']:.5f} "
              f"dtSSD {row['dtssd']:.3f} Dice {row['dice']:.4f}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "splits": args.splits,
                                              "sequences": sorted(sequences), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
