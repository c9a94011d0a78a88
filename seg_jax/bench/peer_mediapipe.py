"""MediaPipe selfie-segmentation peer, run INSIDE the peer virtualenv (mediapipe==0.10.21, numpy<2).

Stand-alone on purpose: it must not import seg_jax (different numpy / jax). Usage:

    python peer_mediapipe.py FRAMES_DIR RESULT_JSON --warmup 10 --iters 100

FRAMES_DIR holds ``<name>.npy`` uint8 RGB frames (H, W, 3). For every frame and each of the two models
(general 256x256 = model_selection 0, landscape 144x256 = model_selection 1) it times
``SelfieSegmentation.process`` (resize to the model input, TFLite inference, mask upsampled back to the
frame size) and writes per-iteration latencies in ms to RESULT_JSON.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import time


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("frames_dir")
    p.add_argument("out")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--composite", action="store_true", help="also alpha-blend onto a background with numpy")
    args = p.parse_args()

    import numpy as np
    import mediapipe as mp

    frames = {os.path.splitext(os.path.basename(f))[0]: np.load(f) for f in sorted(glob.glob(
        os.path.join(args.frames_dir, "*.npy")))}
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


if __name__ == "__main__":
    main()
