"""``python -m seg_jax.onnx_live``: background blur / replacement with an exported ONNX model, without JAX.

Needs only onnxruntime, numpy and OpenCV (``pip install onnxruntime opencv-python numpy``;
``opencv-python-headless`` on a server)::

    python -m seg_jax.export --format onnx --model mobilenet --out mobilenet.onnx     # once, with seg_jax
    python -m seg_jax.onnx_live --onnx mobilenet.onnx --source sample --mode blur --output blur.mp4
    python -m seg_jax.onnx_live --onnx lstm.onnx --source clip.mp4 --mode image:beach.jpg --output out.mp4
    python -m seg_jax.onnx_live --onnx mobilenet.onnx --source 0 --mode color:30,30,30 --output cam.mp4

Sources: 'sample' (the bundled clip), a video file, or a webcam index. Modes: blur[:sigma], color:r,g,b,
image:<path>, mask. The output video is written with OpenCV (mp4v for .mp4, MJPG for .avi). At the end it
prints the frame count and frames per second (whole loop, and the model call alone). Bad input (a missing or
non-ONNX model, an unreadable source, an unwritable output, a size the model cannot take) is one line on
stderr and exit code 2. Nothing on this module's import path imports jax or flax.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seg_jax.inference.sizes import parse_size
from seg_jax.onnx.runtime import OnnxModelError, OnnxSegmenter

SAMPLE = Path(__file__).parents[1] / "assets" / "sample_office.mp4"


class RunnerError(Exception):
    """Bad input to the runner, reported as one line."""


def open_source(source: str):
    import cv2
    path = str(SAMPLE) if source == "sample" else source
    cap = cv2.VideoCapture(int(path)) if path.isdigit() else cv2.VideoCapture(path)
    if not cap.isOpened():
        raise RunnerError(f"cannot open source {source!r} (a video file, 'sample' or a webcam index)")
    return cap


def make_background(mode: str, frame_hw: tuple[int, int]):
    """A function frame (uint8 BGR, OpenCV's order) -> background (uint8 BGR, frame-sized), or None for 'mask'."""
    import cv2
    kind, _, arg = mode.partition(":")
    h, w = frame_hw
    if kind == "blur":
        try:
            sigma = float(arg) if arg else 12.0
        except ValueError:
            raise RunnerError(f"--mode blur takes a strength in pixels (e.g. blur:12), got {mode!r}") from None
        # blur at 1/factor of the frame size (a wide Gaussian is smooth: the upsampled result looks the same)
        factor = max(1, int(sigma // 3))

        def blur(f):
            small = cv2.resize(f, (max(1, w // factor), max(1, h // factor)), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), sigma / factor)
            return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return blur
    if kind == "color":
        try:
            rgb = [int(round(float(v))) for v in arg.split(",")]
        except ValueError:
            rgb = []
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise RunnerError(f"--mode color takes r,g,b in 0..255 (e.g. color:30,30,30), got {mode!r}")
        plate = np.empty((h, w, 3), np.uint8)
        plate[:] = rgb[::-1]
        return lambda f: plate
    if kind == "image":
        img = cv2.imread(arg, cv2.IMREAD_COLOR) if arg else None
        if img is None:
            raise RunnerError(f"cannot read background image {arg!r}")
        plate = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return lambda f: plate
    if kind == "mask":
        return None
    raise RunnerError(f"unknown --mode {mode!r}; choose blur[:sigma], color:r,g,b, image:<path> or mask")


def composite(frame: np.ndarray, alpha: np.ndarray, background) -> np.ndarray:
    """(H, W, 3) uint8 frame, (H, W) float32 alpha -> uint8 alpha * frame + (1 - alpha) * background (the alpha
    as grey for 'mask'), in OpenCV's per-pixel blend (several times faster than the same NumPy expression)."""
    import cv2
    if background is None:
        return cv2.cvtColor(cv2.convertScaleAbs(alpha, alpha=255.0), cv2.COLOR_GRAY2BGR)
    alpha = np.ascontiguousarray(alpha, np.float32)
    return cv2.blendLinear(frame, background(frame), alpha, 1.0 - alpha)


def open_writer(path: str, fps: float, frame_hw: tuple[int, int]):
    import cv2
    out = Path(path)
    if out.is_dir() or not out.parent.is_dir():
        raise RunnerError(f"cannot write output {path}: {'it is a folder' if out.is_dir() else 'no such folder'}")
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if out.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (frame_hw[1], frame_hw[0]))
    if not writer.isOpened():
        raise RunnerError(f"cannot write output {path} (use a writable .mp4 or .avi path)")
    return writer


def run(args: argparse.Namespace) -> dict:
    """The loop; returns {"frames", "fps", "model_fps", "input_size", "model"}."""
    import cv2
    try:
        seg = OnnxSegmenter(args.onnx, parse_size(args.input_size, flag="input-size", auto=True),
                            threads=args.threads)
    except (OnnxModelError, ValueError) as e:
        raise RunnerError(str(e)) from None
    cap = open_source(args.source)
    ok, bgr = cap.read()
    if not ok:
        raise RunnerError(f"source {args.source!r} gave no frames")
    hw = bgr.shape[:2]
    background = make_background(args.mode, hw)
    writer = open_writer(args.output, args.fps or cap.get(cv2.CAP_PROP_FPS) or 25.0, hw) if args.output else None
    # rates over the frames after the first (which pays onnxruntime's one-off set-up), like seg_jax.live
    frames, model_s, start = 0, 0.0, time.perf_counter()
    while ok and (args.max_frames is None or frames < args.max_frames):
        if frames == 1:
            model_s, start = 0.0, time.perf_counter()
        t0 = time.perf_counter()
        alpha = seg.step(bgr, bgr=True)
        model_s += time.perf_counter() - t0
        out = composite(bgr, alpha, background)
        if writer is not None:
            writer.write(out)
        frames += 1
        ok, bgr = cap.read()
    elapsed, timed = time.perf_counter() - start, max(frames - 1, 1)
    cap.release()
    if writer is not None:
        writer.release()
    return {"frames": frames, "fps": timed / max(elapsed, 1e-9), "model_fps": timed / max(model_s, 1e-9),
            "input_size": list(seg.input_size_for(hw)), "model": seg.model_name}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m seg_jax.onnx_live", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, help="an exported model (python -m seg_jax.export --format onnx)")
    p.add_argument("--source", default="sample", help="'sample', a video file, or a webcam index (default sample)")
    p.add_argument("--mode", default="blur", help="blur[:sigma] | color:r,g,b | image:<path> | mask")
    p.add_argument("--output", "-o", help="output video (.mp4 or .avi)")
    p.add_argument("--input-size", help="inference size HxW (default: auto from the model and frame aspect)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--fps", type=float, help="output frame rate (default: the source's)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stats = run(args)
    except RunnerError as e:
        print(f"seg_jax.onnx_live: {e}", file=sys.stderr)
        return 2
    where = f" -> {args.output}" if args.output else ""
    print(f"seg_jax.onnx_live: {stats['frames']} frames{where}; {stats['fps']:.1f} fps end-to-end "
          f"(decode+write included), {stats['model_fps']:.1f} fps model alone at "
          f"{stats['input_size'][0]}x{stats['input_size'][1]} (onnxruntime, {stats['model']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
