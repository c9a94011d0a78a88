"""MediaPipe selfie-segmentation peer, run INSIDE the peer virtualenv (mediapipe==0.10.21, numpy<2).

Stand-alone on purpose: it must not import seg_jax (different numpy / jax). Usage:

    python mediapipe_worker.py FRAMES_DIR RESULT_JSON --warmup 10 --iters 100
    python mediapipe_worker.py FRAMES_DIR - --serve --warmup 10
    python mediapipe_worker.py FRAMES_DIR ALPHAS_DIR --alphas


FRAMES_DIR holds ``<name>.npy`` uint8 RGB frames (H, W, 3). For every frame and each of the two models
(general 256x256 = model_selection 0, landscape 144x256 = model_selection 1) it times
``SelfieSegmentation.process`` (resize to the model input, TFLite inference, mask upsampled back to the
frame size) and writes per-iteration latencies in ms to RESULT_JSON.

``--serve`` keeps both models open and times blocks on request, for rounds that alternate with seg_jax's own
blocks: one JSON request per stdin line, ``{"model": "general_256x256", "frame": "256x256", "iters": 10}``,
answered by one line ``{"times_ms": [...]}`` on stdout (``{"error": ...}`` for a bad request); EOF ends it.
A first line ``{"ready": true, "mediapipe_version": ...}`` says the warm-up is done.

``--alphas`` returns what the models predict instead of timings: for each model, the frames are processed in
name order (one model instance per model, as a video would be) and ``ALPHAS_DIR/<model>/<name>.npy`` gets the
float16 (H, W) person probability at the frame's own size; ``ALPHAS_DIR/info.json`` gets the versions.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time

# Python puts this script's folder first on sys.path, and that folder holds seg_jax's own ``mediapipe.py``
# (the peer's driver): drop it so that ``import mediapipe`` finds the real package of the peer virtualenv.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("frames_dir")
    p.add_argument("out")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--composite", action="store_true", help="also alpha-blend onto a background with numpy")
    p.add_argument("--serve", action="store_true", help="time blocks on request (stdin/stdout JSON lines)")
    p.add_argument("--alphas", action="store_true", help="write each model's alpha per frame to OUT (a folder)")
    args = p.parse_args()

    import mediapipe as mp
    import numpy as np

    if args.alphas:
        write_alphas(mp, np, args.frames_dir, args.out)
        return

    frames = {os.path.splitext(os.path.basename(f))[0]: np.load(f) for f in sorted(glob.glob(
        os.path.join(args.frames_dir, "*.npy")))}
    if args.serve:
        serve(mp, {k: np.ascontiguousarray(v) for k, v in frames.items()}, args.warmup)
        return
    out = {"mediapipe_version": mp.__version__, "python": platform.python_version(), "results": []}
    for selection, model in ((0, "general_256x256"), (1, "landscape_144x256")):
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection) as seg:
            for name, frame in frames.items():
                frame = np.ascontiguousarray(frame)
                bg = np.zeros_like(frame)
                for _ in range(args.warmup):
                    seg.process(frame)
                times = []
                for _ in range(args.iters):
                    t0 = time.perf_counter()
                    mask = seg.process(frame).segmentation_mask
                    if args.composite:
                        a = mask[..., None]
                        _ = (frame * a + bg * (1.0 - a)).astype(np.uint8)
                    times.append((time.perf_counter() - t0) * 1e3)
                out["results"].append({"model": model, "frame": name, "frame_shape": list(frame.shape),
                                       "mask_shape": list(mask.shape), "times_ms": times})
    with open(args.out, "w") as f:
        json.dump(out, f)


def write_alphas(mp, np, frames_dir: str, out_dir: str) -> None:
    paths = sorted(glob.glob(os.path.join(frames_dir, "*.npy")))
    for selection, model in ((0, "general_256x256"), (1, "landscape_144x256")):
        os.makedirs(os.path.join(out_dir, model), exist_ok=True)
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=selection) as seg:
            for path in paths:
                frame = np.ascontiguousarray(np.load(path))
                mask = seg.process(frame).segmentation_mask
                np.save(os.path.join(out_dir, model, os.path.basename(path)), np.clip(mask, 0, 1).astype(np.float16))
    with open(os.path.join(out_dir, "info.json"), "w") as f:
        json.dump({"mediapipe_version": mp.__version__, "python": platform.python_version(), "frames": len(paths)}, f)


def serve(mp, frames, warmup: int) -> None:
    import sys
    models = {"general_256x256": 0, "landscape_144x256": 1}
    segs = {name: mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=sel)
            for name, sel in models.items()}
    for seg in segs.values():
        for frame in frames.values():
            for _ in range(warmup):
                seg.process(frame)
    print(json.dumps({"ready": True, "mediapipe_version": mp.__version__, "python": platform.python_version()}),
          flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            seg, frame, iters = segs[req["model"]], frames[req["frame"]], int(req["iters"])
        except (ValueError, KeyError, TypeError) as e:
            print(json.dumps({"error": f"bad request {line.strip()!r}: {type(e).__name__}: {e}"}), flush=True)
            continue
        times = []
        for _ in range(iters):
            t0 = time.perf_counter()
            seg.process(frame)
            times.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"times_ms": times}), flush=True)
    for seg in segs.values():
        seg.close()


if __name__ == "__main__":
    main()
