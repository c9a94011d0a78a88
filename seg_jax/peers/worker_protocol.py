"""The worker side of :mod:`seg_jax.peers.isolated`'s protocol, for peers that run in their own virtualenv.

Stand-alone on purpose (standard library + numpy only): a worker script in the peer's virtualenv imports it from
this folder, and it never imports seg_jax. A worker supplies a *runner*::

    runner.models          # tuple of model names it answers for
    runner.info            # dict of versions etc. for info.json / the ready line
    runner.reset()         # forget any recurrent state (a new clip, or a still)
    runner.predict(model, frame_uint8_rgb_hw3) -> float32 (H, W) alpha in [0, 1] at the frame's size

and calls :func:`main` with a function that builds the runner from the parsed arguments.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from typing import Any, Callable

import numpy as np


def _frames(frames_dir: str) -> dict[str, np.ndarray]:
    paths = sorted(glob.glob(os.path.join(frames_dir, "*.npy")))
    return {os.path.splitext(os.path.basename(p))[0]: np.ascontiguousarray(np.load(p)) for p in paths}


def write_alphas(runner: Any, frames_dir: str, out_dir: str) -> None:
    """Each model over the frames in name order; a recurrent runner resets where ``sequences.json`` says a clip
    starts (and before every still). Writes ``out_dir/<model>/<name>.npy`` float16 (H, W) and ``info.json``."""
    seq_path = os.path.join(frames_dir, "sequences.json")
    sequences = json.load(open(seq_path)) if os.path.exists(seq_path) else {}
    names = sorted(os.path.splitext(os.path.basename(p))[0] for p in glob.glob(os.path.join(frames_dir, "*.npy")))
    for model in runner.models:
        os.makedirs(os.path.join(out_dir, model), exist_ok=True)
        previous = None
        for name in names:
            sequence = sequences.get(name, "")
            if not sequence or sequence != previous:
                runner.reset()
            previous = sequence
            frame = np.ascontiguousarray(np.load(os.path.join(frames_dir, name + ".npy")))
            alpha = np.clip(runner.predict(model, frame), 0, 1)
            if alpha.shape != frame.shape[:2]:
                raise ValueError(f"{model}: alpha {alpha.shape} for frame {frame.shape[:2]}")
            np.save(os.path.join(out_dir, model, name + ".npy"), alpha.astype(np.float16))
    with open(os.path.join(out_dir, "info.json"), "w") as f:
        json.dump({**runner.info, "frames": len(names)}, f)


def serve(runner: Any, frames: dict[str, np.ndarray], warmup: int) -> None:
    """Time blocks on request: one JSON request per stdin line, ``{"model", "frame", "iters"}``, answered by
    ``{"times_ms": [...]}`` (``{"error": ...}`` for a bad request). Each block starts from a reset state and
    carries it from call to call, as a stream would. A first line ``{"ready": true, ...}`` follows the warm-up."""
    for model in runner.models:
        for frame in frames.values():
            runner.reset()
            for _ in range(warmup):
                runner.predict(model, frame)
    print(json.dumps({"ready": True, **runner.info}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            model, frame, iters = req["model"], frames[req["frame"]], int(req["iters"])
            if model not in runner.models:
                raise KeyError(f"unknown model {model}")
        except (ValueError, KeyError, TypeError) as e:
            print(json.dumps({"error": f"bad request {line.strip()!r}: {type(e).__name__}: {e}"}), flush=True)
            continue
        runner.reset()
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            runner.predict(model, frame)
            times.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"times_ms": times}), flush=True)


def main(build: Callable[[argparse.Namespace], Any], add_arguments: Callable[[argparse.ArgumentParser], None],
         doc: str = "") -> None:
    """``worker.py FRAMES_DIR OUT (--alphas | --serve [--warmup N]) [worker's own flags]``."""
    p = argparse.ArgumentParser(description=doc)
    p.add_argument("frames_dir")
    p.add_argument("out")
    p.add_argument("--alphas", action="store_true", help="write each model's alpha per frame to OUT (a folder)")
    p.add_argument("--serve", action="store_true", help="time blocks on request (stdin/stdout JSON lines)")
    p.add_argument("--warmup", type=int, default=10)
    add_arguments(p)
    args = p.parse_args()
    if args.alphas == args.serve:
        p.error("give exactly one of --alphas, --serve")
    runner = build(args)
    if args.alphas:
        write_alphas(runner, args.frames_dir, args.out)
    else:
        serve(runner, _frames(args.frames_dir), args.warmup)
