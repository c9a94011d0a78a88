"""Flags for ``python -m seg_jax.live`` -> :func:`seg_jax.live.app.run`. Kept thin.

Examples:
  python -m seg_jax.live                                   # webcam 0, window (needs a display)
  python -m seg_jax.live --source sample --mode blur --output runs/blur.mp4
  python -m seg_jax.live --source clip.mp4 --mode image:beach.jpg --model convlstm --output out.mp4
  python -m seg_jax.live --source photos/ --mode mask --output masks/
  python -m seg_jax.live --source 0 --mode color:30,30,30 --virtual-cam --no-window
  python -m seg_jax.live --source 0 --people primary --failsafe freeze --preset fast --virtual-cam
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from seg_jax.common.args import OneLineParser
from seg_jax.live.app import HELP_KEYS, LiveError, LiveOptions, RunStats, run
from seg_jax.live.failsafe import ACTIONS
from seg_jax.live.modes import mode_help
from seg_jax.live.people import PEOPLE
from seg_jax.live.presets import preset_help
from seg_jax.live.signals import StopRequest, ignore_stop_signals
from seg_jax.live.sources import quiet_opencv
from seg_jax.models.registry import MODEL_NAMES, describe_models


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="python -m seg_jax.live",
        description="Real-time background blur / replacement for video calls (webcam, video, images, URL).",
        epilog=f"Window {HELP_KEYS}. Exit codes: 0 ok, 1 runtime error, 2 bad input, 128+N stopped by signal N "
               "(Ctrl-C 130, SIGTERM 143, SIGHUP 129; the output is finalised first).",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_io_flags(p.add_argument_group("input / output"))
    _add_privacy_flags(p.add_argument_group("privacy"))
    _add_effect_flags(p.add_argument_group("effect"))
    _add_model_flags(p.add_argument_group("model"))
    return p


def _add_io_flags(io) -> None:
    """Where frames come from and go to, and how the run reports."""
    io.add_argument("--source", default="0",
                    help="webcam index (0), 'sample' (shipped clip), video file, image, image folder, or "
                         "rtsp/http URL (default: 0)")
    io.add_argument("--output", "-o", help="video file (.mp4 H.264, .avi, .webm, .mkv), image file (.png/.jpg), "
                                           "or a folder for PNG frames")
    io.add_argument("--window", dest="window", action="store_true", default=None,
                    help="show a window (default: whenever a display can show one, also as a preview beside "
                         "--output; not for photos written to files)")
    io.add_argument("--no-window", dest="window", action="store_false", help="never open a window")
    io.add_argument("--virtual-cam", action="store_true",
                    help="send to a virtual webcam (pip install 'seg_jax[virtualcam]' + v4l2loopback on Linux)")
    io.add_argument("--virtual-cam-device", metavar="DEVICE",
                    help="the virtual webcam to write to, e.g. /dev/video2 (default: the first free one)")
    io.add_argument("--max-frames", type=int, help="stop after this many frames")
    io.add_argument("--fps", type=float, help="output frame rate (default: the source's)")
    io.add_argument("--overlay", dest="overlay", action="store_true", default=None,
                    help="draw fps, latency, flicker and the fail-safe's state on the output too (always on in "
                         "the window)")
    io.add_argument("--mirror", action="store_true", help="flip horizontally (selfie view)")
    io.add_argument("--no-compile-cache", dest="compile_cache", action="store_false",
                    help="do not keep compiled steps between runs (default: kept in $SEG_JAX_CACHE or "
                         "~/.cache/seg_jax/jax, so a second start skips most of the compile)")
    io.add_argument("--quiet", "-q", action="store_true", help="no progress bar or messages")
    io.add_argument("--flicker", action="store_true", help=argparse.SUPPRESS)  # always reported now
    io.add_argument("--no-pipeline", dest="pipeline", action="store_false",
                    help="read, segment and write one after the other in one thread (default: three threads "
                         "that overlap)")


def _add_privacy_flags(safety) -> None:
    """What the output shows when the mask cannot be trusted, and whose mask it is."""
    safety.add_argument("--failsafe", default="blur", metavar="|".join(ACTIONS),
                        help="when the mask cannot be trusted (camera covered or black, frozen source, the person "
                             "region covering most of the frame, a mostly uncertain alpha): blur the whole output, "
                             "freeze the last good one, or off (default: blur)")
    safety.add_argument("--people", default="all", metavar="|".join(PEOPLE),
                        help="all: everybody the model finds; primary: only the main person (the largest region "
                             "near the centre, followed by overlap) (default: all)")


def _add_effect_flags(look) -> None:
    """What happens to the background and the person's edge."""
    look.add_argument("--mode", "-m", default="blur", help=mode_help())
    look.add_argument("--blur", type=float, default=12.0, help="background blur strength in pixels (default 12)")
    edge = look.add_mutually_exclusive_group()
    edge.add_argument("--threshold", type=float, help="hard mask: alpha >= THRESHOLD (default: soft alpha)")
    edge.add_argument("--soft", dest="threshold", action="store_const", const=None, help="soft alpha (default)")
    look.add_argument("--feather", type=float, default=0.0, help="soften the mask edge by this many pixels (0..50)")
    look.add_argument("--expand", type=int, default=0, help="grow (+) or shrink (-) the person by N pixels (-50..50)")
    look.add_argument("--smooth", type=float, default=0.0,
                      help="temporal smoothing in [0, 1): weight of the previous alpha everywhere (default 0)")
    look.add_argument("--stabilise", type=float, default=None, metavar="STRENGTH",
                      help="hold the previous alpha where the image is still, in [0, 1) (default: the Segmenter's, "
                           "seg_jax.inference.segmenter.DEFAULT_STABILISE; 0: off; "
                           "moving parts always take the new alpha)")
    look.add_argument("--light-wrap", type=float, default=0.0, metavar="STRENGTH",
                      help="image/video/color/green: let the new background's light spill over the person's "
                           "edge, in [0, 1] (default 0: off)")
    look.add_argument("--no-clean-edges", dest="clean_edges", action="store_false",
                      help="image/video/color/green: blend the frame itself at soft edges (default: its estimated "
                           "foreground colour, so the old room's colour does not show round the person)")


def _add_model_flags(m) -> None:
    """Which network runs, at what size, and how its alpha is brought to full resolution."""
    m.add_argument("--preset", metavar="quality|balanced|fast", help=preset_help())
    m.add_argument("--model", default=None, choices=MODEL_NAMES,
                   help=f"{describe_models()} (default: the preset's)")
    m.add_argument("--checkpoint", help="weights folder or training workdir (default: shipped weights; "
                                        "'random' = untrained, for speed tests)")
    m.add_argument("--input-size", help="inference size HxW, e.g. 160x288 (default: from the weights, "
                                        "adapted to the frame's aspect ratio)")
    m.add_argument("--no-keep-aspect", dest="keep_aspect", action="store_false", default=None,
                   help="always use the weights' inference size, whatever the frame's aspect ratio")
    m.add_argument("--refine", default=None, choices=("guided", "guided-gray", "bilinear"),
                   help="alpha upsampling to full resolution: guided filter on the RGB frame (best edges), on "
                        "its luma (guided-gray: cheaper), or bilinear (cheapest) (default: the preset's)")
    m.add_argument("--guided-radius", type=int, default=None,
                   help="guided filter radius in inference pixels (default 6; larger follows edges further)")
    m.add_argument("--guided-eps", type=float, default=1e-3, help="guided filter regularisation")
    m.add_argument("--every", type=int, default=1, metavar="N",
                   help="run the network on every N-th frame only; the frames between reuse its last alpha, "
                        "refined on each new frame by the guided filter (less CPU; results/bench/cpu-load.md) "
                        "(default 1: every frame)")
    m.add_argument("--guided-subsample", type=int, default=None,
                   help="fit the guided filter at 1/N of the inference size (2: about half its cost, slightly "
                        "softer edges; see results/ablations/guided_subsample) (default: the preset's)")


def options_from_args(args: argparse.Namespace) -> LiveOptions:
    return LiveOptions(
        source=args.source, mode=args.mode, output=args.output, window=args.window,
        virtual_cam=args.virtual_cam or bool(args.virtual_cam_device),
        virtual_cam_device=args.virtual_cam_device,
        model=args.model, checkpoint=args.checkpoint, input_size=args.input_size, keep_aspect=args.keep_aspect,
        refine=args.refine, guided_radius=args.guided_radius, guided_eps=args.guided_eps,
        guided_subsample=args.guided_subsample, blur=args.blur,
        threshold=args.threshold, feather=args.feather, expand=args.expand, smooth=args.smooth,
        stabilise=args.stabilise, mirror=args.mirror,
        max_frames=args.max_frames, fps=args.fps, overlay=args.overlay, progress=not args.quiet, quiet=args.quiet,
        flicker=args.flicker, preset=args.preset, failsafe=args.failsafe, people=args.people,
        pipeline=args.pipeline, clean_edges=args.clean_edges, light_wrap=args.light_wrap, every=args.every)


def summary(stats: RunStats) -> str:
    """The final line: frames, outputs, why it ended, rates, latency, flicker and the fail-safe's share."""
    where = f" -> {', '.join(stats.outputs)}" if stats.outputs else (" (nothing written)" if not stats.frames else "")
    latency = ("latency - (one frame)" if stats.latency_median_ms is None else
               f"latency {stats.latency_median_ms:.0f} ms median, {stats.latency_p95_ms:.0f} ms p95")
    flicker = "-" if stats.flicker is None else f"{stats.flicker:.5f}"
    return (f"seg_jax.live: {stats.frames} frames{where}; {stats.end_reason}; {stats.fps:.1f} fps end-to-end "
            f"(decode+write included), {stats.process_fps:.1f} fps segment+composite; {latency} "
            f"(capture to output); flicker {flicker}; fail-safe on {stats.failsafe_frames} frames")


def use_compile_cache() -> Optional[str]:
    """Keep XLA's compiled executables in a user cache folder (JAX's persistent compilation cache), unless the
    caller already chose one. Returns the folder, or None when it cannot be used."""
    import os
    from pathlib import Path

    import jax
    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    folder = Path(os.environ.get("SEG_JAX_CACHE") or Path.home() / ".cache" / "seg_jax") / "jax"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return str(folder)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_opencv()
    if args.compile_cache:
        use_compile_cache()
    opts = options_from_args(args)
    stop = StopRequest()
    try:
        with stop.installed():
            stats = run(opts, stop=stop)
    except LiveError as e:
        print(f"seg_jax.live: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        ignore_stop_signals()   # outputs are final: a further Ctrl-C must not interrupt the interpreter's exit
        print("seg_jax.live: interrupted before the first frame", file=sys.stderr)
        return 130
    if stop:
        ignore_stop_signals()
    if not opts.quiet:
        print(summary(stats), file=sys.stderr)
    if stop:
        return stop.exit_code
    if stats.end_reason.startswith(("camera disconnected", "stream lost", "no frames", "could not decode",
                                    "skipped", "damaged input")):
        return 1   # seg_jax.common.exit_codes.INPUT_ENDED_EARLY
    return 0


if __name__ == "__main__":
    sys.exit(main())
