"""``python -m seg_jax.onnx_live``: background blur / replacement with an exported ONNX model, without JAX.

Needs only onnxruntime, numpy and OpenCV (``pip install onnxruntime opencv-python numpy``;
``opencv-python-headless`` on a server)::

    python -m seg_jax.export --format onnx --model mobilenet --out mobilenet.onnx     # once, with seg_jax
    python -m seg_jax.onnx_live --onnx mobilenet.onnx --source sample --mode blur --output blur.mp4
    python -m seg_jax.onnx_live --onnx lstm.onnx --source clip.mp4 --mode image:beach.jpg --output out.mp4
    python -m seg_jax.onnx_live --onnx mobilenet.onnx --source 0 --mode color:30,30,30 --output cam.mp4

Sources: 'sample' (the bundled clip), a video file, or a webcam index. Modes: blur[:sigma], color:r,g,b,
image:<path>, mask. The output video is written by the live tool's video sink (:mod:`seg_jax.live.sinks`: H.264
for .mp4 when imageio-ffmpeg is installed, else OpenCV's mp4v; MJPG for .avi), with the live tool's promise: it
is written beside its target and renamed only when complete, an output that is one of the inputs is refused, a
full disk or a failed encoder keeps the earlier file, and a stop signal (Ctrl-C, SIGTERM, SIGHUP) finalises
what was written (beside an earlier file, as ``<name>.interrupted<ext>``). At the end it prints the frame count
and frames per second (whole loop, and the model call alone). Exit codes (:mod:`seg_jax.common.exit_codes`):
0 done; 1 the video ended early (damaged: the lost frames are counted); 2 a problem to fix (a missing or
non-ONNX model, an unreadable source, an unwritable output, a size the model cannot take), one line on stderr;
128+N stopped by signal N. Nothing on this module's import path imports jax or flax.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seg_jax.common.args import OneLineParser
from seg_jax.common.exit_codes import INPUT_ENDED_EARLY, USER_ERROR
from seg_jax.common.writer import OutputError, check_output
from seg_jax.inference.sizes import parse_size
from seg_jax.live.signals import StopRequest, ignore_stop_signals
from seg_jax.live.sinks import VIDEO_EXTENSIONS, SinkError, VideoFileSink
from seg_jax.live.sources import IMAGE_EXTENSIONS, CaptureSource, SourceError, quiet_opencv
from seg_jax.live.sources import open_source as open_live_source
from seg_jax.onnx.runtime import OnnxModelError, OnnxSegmenter

SAMPLE = Path(__file__).parents[1] / "assets" / "sample_office.mp4"


class RunnerError(Exception):
    """Bad input to the runner, reported as one line."""


def open_source(source: str):
    """A video file, 'sample' or a webcam index -> :class:`seg_jax.live.sources.CaptureSource` (RGB frames; a
    damaged file's undecodable frames are skipped and counted in its ``end_reason``), or one RunnerError line."""
    path = Path(source)
    if source != "sample" and (path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS):
        raise RunnerError(f"--source {source} is a photo or a folder; onnx_live reads a video file, 'sample' or a "
                          "webcam index (for photos: python -m seg_jax.live --source PHOTOS --mode mask)")
    try:
        capture = open_live_source(source)
    except SourceError as e:
        raise RunnerError(str(e)) from None
    if not isinstance(capture, CaptureSource):
        capture.close()
        raise RunnerError(f"cannot open source {source!r} (a video file, 'sample' or a webcam index)")
    return capture


def make_background(mode: str, frame_hw: tuple[int, int]):
    """A function frame (uint8 RGB) -> background (uint8 RGB, frame-sized), or None for 'mask'."""
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
        plate[:] = rgb
        return lambda f: plate
    if kind == "image":
        img = cv2.imread(arg, cv2.IMREAD_COLOR) if arg else None
        if img is None:
            raise RunnerError(f"cannot read background image {arg!r}")
        plate = cv2.cvtColor(cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
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


def background_input(mode: str) -> Optional[str]:
    """The file a mode reads (``image:<path>``), else None."""
    kind, _, arg = mode.partition(":")
    return arg if kind == "image" and arg else None


def check_output_path(args: argparse.Namespace) -> None:
    """Before the model is loaded: ``--output`` is a video path in an existing folder that is none of the
    inputs (model, source, background image), not a folder, not read-only; else one RunnerError line."""
    out = Path(args.output)
    source = None if args.source == "sample" or args.source.isdigit() else args.source
    try:
        check_output(out, inputs=[args.onnx, source, background_input(args.mode)])
    except OutputError as e:
        raise RunnerError(str(e)) from None
    if out.suffix.lower() not in VIDEO_EXTENSIONS:
        raise RunnerError(f"--output {out}: onnx_live writes videos; use a name ending in "
                          f"{', '.join(VIDEO_EXTENSIONS)} (e.g. out.mp4)")
    if not out.parent.is_dir():
        raise RunnerError(f"cannot write output {out}: no such folder {out.parent}; create it or choose another "
                          "--output")


def open_sink(path: str, fps: float, audio_from: Optional[str]):
    """The live tool's :class:`seg_jax.live.sinks.VideoFileSink` for ``path`` (nothing is written before the
    first frame), or one RunnerError line."""
    try:
        return VideoFileSink(path, fps, audio_from=audio_from)
    except SinkError as e:
        raise RunnerError(str(e)) from None


def segment(seg: OnnxSegmenter, frame: np.ndarray, model: str) -> np.ndarray:
    """One frame through the model; onnxruntime's own failure (a graph that takes another layout or size) is one
    RunnerError line instead of its traceback."""
    try:
        return seg.step(frame)
    except (OnnxModelError, ValueError) as e:
        raise RunnerError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own Fail / InvalidArgument types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise RunnerError(f"{model} cannot segment a {frame.shape[1]}x{frame.shape[0]} frame ({first}); "
                          "export it with python -m seg_jax.export --format onnx") from None


def run(args: argparse.Namespace, stop: Optional[StopRequest] = None) -> dict:
    """The loop; returns {"frames", "fps", "model_fps", "input_size", "model", "output", "end_reason",
    "stopped"}. The output is finalised at the end, on a stop signal (``stop``, checked before each frame) and on
    a second Ctrl-C; on any error it is discarded and an earlier file at ``--output`` stays as it was."""
    stop = stop if stop is not None else StopRequest()
    if args.output:
        check_output_path(args)
    try:
        seg = OnnxSegmenter(args.onnx, parse_size(args.input_size, flag="input-size", auto=True),
                            threads=args.threads)
    except (OnnxModelError, ValueError) as e:
        raise RunnerError(str(e)) from None
    source = open_source(args.source)
    sink = None
    try:
        frame = source.read()
        if frame is None:
            raise RunnerError(f"source {args.source!r} gave no frames ({source.end_reason or 'empty'})")
        hw = frame.shape[:2]
        background = make_background(args.mode, hw)
        if args.output:
            audio = None if args.source.isdigit() else str(SAMPLE) if args.source == "sample" else args.source
            sink = open_sink(args.output, args.fps or source.fps, audio)
        stats = _loop(args, seg, source, frame, background, sink, stop)
        _finalise(sink, stats["stopped"])
    except KeyboardInterrupt:      # a second stop signal: finalise what was written and say so
        _finalise(sink, True)
        raise
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    finally:
        source.close()
    stats.update(input_size=list(seg.input_size_for(hw)), model=seg.model_name,
                 output=sink.description if sink is not None and sink.frames else None,
                 end_reason=stop.reason or source.end_reason)
    return stats


def _finalise(sink: Optional[VideoFileSink], interrupted: bool) -> None:
    """Close ``sink`` (None: no output); an encoder that failed (a full disk) is one RunnerError line, its partial
    file already gone and an earlier output kept."""
    if sink is None:
        return
    try:
        sink.close(interrupted=interrupted)
    except SinkError as e:
        raise RunnerError(str(e)) from None


def _loop(args, seg, source, frame, background, sink, stop: StopRequest) -> dict:
    """Segment, composite and write until the source ends, ``--max-frames`` or a stop signal."""
    # rates over the frames after the first (which pays onnxruntime's one-off set-up), like seg_jax.live
    frames, model_s, start = 0, 0.0, time.perf_counter()
    while frame is not None and (args.max_frames is None or frames < args.max_frames) and not stop:
        if frames == 1:
            model_s, start = 0.0, time.perf_counter()
        t0 = time.perf_counter()
        alpha = segment(seg, frame, args.onnx)
        model_s += time.perf_counter() - t0
        out = composite(frame, alpha, background)
        if sink is not None:
            try:
                sink.write(out)
            except SinkError as e:
                raise RunnerError(str(e)) from None
        frames += 1
        frame = source.read() if args.max_frames is None or frames < args.max_frames else None
    elapsed, timed = time.perf_counter() - start, max(frames - 1, 1)
    return {"frames": frames, "fps": timed / max(elapsed, 1e-9), "model_fps": timed / max(model_s, 1e-9),
            "stopped": bool(stop)}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m seg_jax.onnx_live", description=__doc__.split("\n\n")[0])
    p.add_argument("--onnx", required=True, help="an exported model (python -m seg_jax.export --format onnx)")
    p.add_argument("--source", default="sample", help="'sample', a video file, or a webcam index (default sample)")
    p.add_argument("--mode", default="blur", help="blur[:sigma] | color:r,g,b | image:<path> | mask")
    p.add_argument("--output", "-o", help="output video (.mp4, .avi, .webm, .mkv)")
    p.add_argument("--input-size", help="inference size HxW (default: auto from the model and frame aspect)")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--fps", type=float, help="output frame rate (default: the source's)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: all cores)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; -> the exit code (:mod:`seg_jax.common.exit_codes`)."""
    args = build_parser().parse_args(argv)
    quiet_opencv()
    stop = StopRequest()
    try:
        with stop.installed():
            stats = run(args, stop)
    except RunnerError as e:
        print(f"seg_jax.onnx_live: error: {e}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        ignore_stop_signals()
        print(f"seg_jax.onnx_live: {stop.reason or 'interrupted'} again; what was written is finalised",
              file=sys.stderr)
        return stop.exit_code or 130
    if stop:
        ignore_stop_signals()
    where = f" -> {stats['output']}" if stats["output"] else (" (nothing written)" if args.output else "")
    ended = f"; {stats['end_reason']}" if stats["end_reason"] else ""
    print(f"seg_jax.onnx_live: {stats['frames']} frames{where}{ended}; {stats['fps']:.1f} fps end-to-end "
          f"(decode+write included), {stats['model_fps']:.1f} fps model alone at "
          f"{stats['input_size'][0]}x{stats['input_size'][1]} (onnxruntime, {stats['model']})")
    if stop:
        return stop.exit_code
    return INPUT_ENDED_EARLY if stats["end_reason"] else 0


if __name__ == "__main__":
    sys.exit(main())
