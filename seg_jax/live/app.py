"""The live loop: source -> Segmenter (streaming step) -> render (alpha refinement + composite) -> sinks.

Everything a user can get wrong ends with a one-line message (``LiveError``); outputs are always finalised
(``finally``), so Ctrl-C, a camera unplugged mid-stream or a damaged file still leave a playable video.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from seg_jax.live.checks import MAX_BLUR, LiveError, check_blur, check_numbers, check_output_spares_input
from seg_jax.live.signals import StopRequest
from seg_jax.live.sinks import (
    FrameSink,
    ImageFolderSink,
    SingleImageSink,
    SinkError,
    VideoFileSink,
    VirtualCameraSink,
    WindowSink,
    has_display,
    why_no_window,
)
from seg_jax.live.sources import (
    IMAGE_EXTENSIONS,
    SAMPLE_VIDEO,
    URL_PREFIXES,
    ImageListSource,
    LoopingVideo,
    SourceError,
    open_source,
    read_image,
    resize_cover,
)


@dataclasses.dataclass
class Mode:
    """A parsed ``--mode``: kind in ops.MODES plus its argument (blur sigma, path, colour)."""
    kind: str
    blur_sigma: float = 12.0
    path: Optional[str] = None
    color: tuple[int, int, int] = (0, 0, 0)


def parse_mode(text: str, blur_sigma: float = 12.0) -> Mode:
    """'blur' | 'blur:<sigma>' | 'image:<path>' | 'video:<path>' | 'color:<r,g,b>' | 'mask' | 'green'."""
    from seg_jax.ops.composite import MODES
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind not in MODES:
        raise LiveError(f"unknown mode {text!r}; use blur, blur:<strength>, image:<path>, video:<path>, "
                        f"color:<r,g,b>, mask or green")
    if kind == "blur":
        try:
            sigma = float(arg) if arg else blur_sigma
        except ValueError:
            raise LiveError(f"blur strength must be a number, got {arg!r}") from None
        return Mode("blur", blur_sigma=check_blur(sigma))
    if kind in ("image", "video"):
        if not arg:
            raise LiveError(f"mode {kind} needs a path: --mode {kind}:<path>")
        return Mode(kind, path=arg)
    if kind == "color":
        try:
            rgb = tuple(int(v) for v in arg.replace(" ", "").split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
        except ValueError:
            raise LiveError(f"color must be r,g,b with values 0..255, got {arg!r}") from None
        return Mode("color", color=rgb)
    return Mode(kind)


@dataclasses.dataclass
class LiveOptions:
    """Everything the live tool can do; the CLI flags map 1:1 onto these fields."""
    source: str = "0"
    mode: str = "blur"
    output: Optional[str] = None          # video file (.mp4/.avi/.webm/.mkv), image file, or folder
    window: Optional[bool] = None         # None: a window when a display exists and nothing else is asked for
    virtual_cam: bool = False
    virtual_cam_device: Optional[str] = None  # e.g. /dev/video2 (default: the backend's first free device)
    model: str = "mobilenet"
    checkpoint: Optional[str] = None      # None: shipped weights; 'random': untrained (demo/benchmark)
    input_size: Optional[str] = None      # None/'auto' or 'HxW'
    keep_aspect: Optional[bool] = None  # None: as the weights' manifest says
    refine: str = "guided"
    guided_radius: Optional[int] = None  # None: seg_jax.streaming.DEFAULT_GUIDED_RADIUS
    guided_eps: float = 1e-3
    guided_subsample: int = 1  # fit the guided filter at 1/N of the inference size
    blur: float = 12.0
    threshold: Optional[float] = None     # None: soft alpha
    feather: float = 0.0
    expand: int = 0
    smooth: float = 0.0                   # temporal EMA weight of the previous alpha, [0, 1)
    stabilise: Optional[float] = None     # motion-gated hold strength in [0, 1); None: the Segmenter's default
    mirror: bool = False
    max_frames: Optional[int] = None
    fps: Optional[float] = None           # output frame rate (default: the source's)
    overlay: Optional[bool] = None        # FPS/latency text (default: in the window only)
    progress: bool = True
    quiet: bool = False
    flicker: bool = False                 # measure the flicker of the (smoothed) alpha over the run
    clean_edges: bool = True              # replace modes: blend the estimated foreground colour, not the frame
    light_wrap: float = 0.0               # replace modes: new background light over the edge, [0, 1]


def stabilise_settings(strength: Optional[float]):
    """--stabilise STRENGTH -> the Segmenter's hold settings (None keeps its default; 0 turns the hold off)."""
    if strength is None:
        return None
    from seg_jax.segmenter import DEFAULT_STABILISE
    return dataclasses.replace(DEFAULT_STABILISE, strength=float(strength))


@dataclasses.dataclass
class RunStats:
    frames: int = 0                       # frames written
    timed_frames: int = 0                 # frames after the first (compile) one, used for the rates
    seconds: float = 0.0                  # wall time of the timed frames (decode and writing included)
    process_seconds: float = 0.0          # segmentation + compositing + transfer (decode and writing excluded)
    end_reason: str = "end of input"
    flicker: Optional[float] = None       # mean |alpha_t - alpha_{t-1}| (with LiveOptions.flicker)
    outputs: list = dataclasses.field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.timed_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def process_fps(self) -> float:
        return self.timed_frames / self.process_seconds if self.process_seconds > 0 else 0.0


HELP_KEYS = "keys: b blur  i image  v video  c color  g green  m mask  t threshold  +/- blur  f mirror  r reset  q quit"


def _draw_overlay(frame: np.ndarray, text: str) -> np.ndarray:
    import cv2
    out = frame.copy()
    scale = max(0.4, frame.shape[1] / 1280)
    for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (8, int(22 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color, thick,
                    cv2.LINE_AA)
    return out


def _wxh(hw) -> str:
    """(h, w) -> 'WxH' (how video sizes are usually written; every size the tool prints uses this)."""
    return f"{int(hw[1])}x{int(hw[0])}"


def _log(opts: LiveOptions, msg: str) -> None:
    if not opts.quiet:
        print(msg, file=sys.stderr, flush=True)


# Photos of a folder are padded up to a multiple of this (edge pixels repeated) and the result cropped back, so
# a folder of mixed sizes compiles once per bucket, not once per image.
STILL_BUCKET = 64


def pad_to_bucket(frame: np.ndarray, bucket: int) -> np.ndarray:
    """(H, W, 3) -> (H', W', 3) with H', W' the next multiples of ``bucket``, the new rows/columns repeating
    the last ones (so the person's edge and the background continue)."""
    h, w = frame.shape[:2]
    ph, pw = -h % bucket, -w % bucket
    if not ph and not pw:
        return frame
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)), mode="edge")


def audio_source(opts: LiveOptions, source_fps: float) -> Optional[str]:
    """The source file whose sound track the output keeps: a video file written at its own frame rate."""
    source = str(SAMPLE_VIDEO) if opts.source == "sample" else str(opts.source)
    if source.isdigit() or source.startswith(URL_PREFIXES) or Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        return None
    if not Path(source).is_file() or (opts.fps is not None and abs(opts.fps - source_fps) > 1e-3):
        return None
    return source


def _file_sinks(opts: LiveOptions, fps: float, source_fps: float) -> list[FrameSink]:
    """The output file/folder and virtual camera sinks (opened and probed before the model loads)."""
    sinks: list[FrameSink] = []
    if opts.output:
        suffix = Path(opts.output).suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            sinks.append(SingleImageSink(opts.output))
        elif suffix:
            sinks.append(VideoFileSink(opts.output, fps, audio_from=audio_source(opts, source_fps)))
        else:
            sinks.append(ImageFolderSink(opts.output))
    if opts.virtual_cam:
        sinks.append(VirtualCameraSink(fps, opts.virtual_cam_device))
    return sinks


def run(opts: LiveOptions, *, capture_factory: Optional[Callable[..., Any]] = None, segmenter: Any = None,
        stop: Optional[StopRequest] = None) -> RunStats:
    """Run the live tool. Raises :class:`LiveError` (one-line message) for bad input; always finalises outputs.

    ``capture_factory``: builds ``cv2.VideoCapture``-like objects (tests inject a fake camera).
    ``segmenter``: an existing :class:`seg_jax.Segmenter` (reuses its compiled steps).
    ``stop``: a :class:`StopRequest` the loop checks before each frame (the CLI routes stop signals to it).
    """
    import cv2
    import jax.numpy as jnp

    from seg_jax.ops.composite import AlphaOptions, CompositeOptions, render

    capture_factory = capture_factory or cv2.VideoCapture
    stop = stop if stop is not None else StopRequest()
    mode = parse_mode(opts.mode, opts.blur)
    check_numbers(opts)
    check_output_spares_input(str(opts.source), opts.output)

    # Backgrounds first: a missing file should fail before any model loading.
    bg_image = bg_video = None
    try:
        if mode.kind == "image":
            bg_image = read_image(mode.path, "background image")
        elif mode.kind == "video":
            bg_video = LoopingVideo(mode.path, capture_factory)
        source = open_source(opts.source, capture_factory=capture_factory)
    except SourceError as e:
        raise LiveError(str(e)) from None

    sinks: list[FrameSink] = []
    window: Optional[WindowSink] = None
    stats = RunStats()
    try:
        out_fps = opts.fps or source.fps
        try:
            sinks += _file_sinks(opts, out_fps, source.fps)
        except SinkError as e:
            raise LiveError(str(e)) from None
        if segmenter is None:
            from seg_jax.segmenter import Segmenter
            try:
                segmenter = Segmenter(opts.model, opts.checkpoint, opts.input_size, keep_aspect=opts.keep_aspect,
                                      refine=opts.refine, guided_radius=opts.guided_radius,
                                      guided_eps=opts.guided_eps, guided_subsample=opts.guided_subsample,
                                      stabilise=stabilise_settings(opts.stabilise))
            except (FileNotFoundError, ValueError) as e:
                missing_weights = opts.checkpoint is None and isinstance(e, FileNotFoundError)
                hint = " (or --checkpoint random for an untrained speed test)" if missing_weights else ""
                raise LiveError(f"{e}{hint}") from None
        if segmenter.manifest.get("random"):
            _log(opts, "warning: untrained (random) weights: the mask is meaningless; this run only measures speed")

        try:
            want_window = opts.window if opts.window is not None else (not sinks and has_display())
            if want_window:
                window = WindowSink()
                sinks.append(window)
        except SinkError as e:
            raise LiveError(str(e)) from None
        if not sinks:
            raise LiveError(f"nowhere to show the result: {why_no_window() or 'no window'}; pass --output FILE "
                            "(e.g. runs/out.mp4), --output FOLDER/ or --virtual-cam")

        alpha_opts = AlphaOptions(opts.threshold, int(opts.expand), float(opts.feather))
        comp_opts = CompositeOptions(mode.kind, float(mode.blur_sigma), mode.color,
                                     clean_edges=opts.clean_edges, light_wrap=float(opts.light_wrap))
        strength = jnp.float32(opts.smooth)
        threshold_toggle = opts.threshold if opts.threshold is not None else 0.5
        mirror = opts.mirror
        overlay = opts.overlay if opts.overlay is not None else window is not None

        def say(msg: str) -> None:
            if progress is not None:
                progress.write(msg, file=sys.stderr)
            else:
                _log(opts, msg)

        def background_for(hw):
            if comp_opts.mode == "image" and bg_image is not None:
                if hw not in bg_cache:
                    bg_cache[hw] = jnp.asarray(resize_cover(bg_image, hw))
                return bg_cache[hw]
            if comp_opts.mode == "video" and bg_video is not None:
                return bg_video.next(hw)
            return None

        bg_cache: dict = {}
        progress = None
        hint = source.size_hint()
        if hint is not None:  # compile before the first frame is captured (a webcam keeps streaming meanwhile)
            t0 = time.perf_counter()
            _log(opts, f"{source.name}: {_wxh(hint)} @ {source.fps:.1f} fps; model {segmenter.model_name} at "
                       f"{_wxh(segmenter.input_size_for(hint))}; compiling...")
            segmenter.warmup(hint)
            zero = jnp.zeros(hint, jnp.float32)
            bg = background_for(hint) if comp_opts.mode == "image" else (
                jnp.zeros(hint + (3,), jnp.uint8) if comp_opts.mode == "video" else None)
            warm = render(jnp.zeros(hint + (3,), jnp.uint8), zero, zero, bg, strength, alpha_opts, comp_opts)
            warm[0].block_until_ready()
            _log(opts, f"compiled in {time.perf_counter() - t0:.1f} s")
        if opts.progress and not source.live and not opts.quiet and (source.frame_count or 0) > 1:
            from tqdm import tqdm
            total = source.frame_count if opts.max_frames is None else min(source.frame_count, opts.max_frames)
            progress = tqdm(total=total, unit="frame", desc="seg_jax.live", file=sys.stderr, dynamic_ncols=True)

        prev_alpha = None
        still_images = isinstance(source, ImageListSource) and source.frame_count > 1
        fps_ema = latency_ms = 0.0
        t_start = time.perf_counter()
        first = True
        last_t = None
        meter = None
        if opts.flicker:
            from seg_jax.metrics_temporal import FlickerMeter
            meter = FlickerMeter()
        try:
            while opts.max_frames is None or stats.frames < opts.max_frames:
                if stop:
                    stats.end_reason = stop.reason
                    break
                frame = source.read()
                if frame is None:
                    if source.end_reason:
                        stats.end_reason = source.end_reason
                    break
                t0 = time.perf_counter()
                if mirror:
                    frame = np.ascontiguousarray(frame[:, ::-1])
                shown_hw = frame.shape[:2]
                if still_images:   # unrelated photos: no state carried over, sizes bucketed to reuse compiles
                    segmenter.reset()
                    prev_alpha = None
                    frame = pad_to_bucket(frame, STILL_BUCKET)
                hw = frame.shape[:2]
                if first and hint != hw:
                    say(f"{source.name}: {_wxh(hw)}; model {segmenter.model_name} at "
                        f"{_wxh(segmenter.input_size_for(hw))}; compiling...")
                background = background_for(hw)
                alpha = segmenter.step_device(frame)
                if prev_alpha is None or prev_alpha.shape != alpha.shape:
                    prev_alpha = alpha
                out, prev_alpha = render(frame, alpha, prev_alpha, background, strength, alpha_opts, comp_opts)
                out = np.asarray(out)[:shown_hw[0], :shown_hw[1]]
                t1 = time.perf_counter()
                if meter is not None:
                    meter.update(np.asarray(prev_alpha))
                if first:
                    if hint != hw:
                        say(f"compiled in {t1 - t0:.1f} s")
                    t_start = time.perf_counter()  # measure the steady state
                    first = False
                else:
                    stats.process_seconds += t1 - t0
                    stats.timed_frames += 1
                stats.frames += 1
                dt = t1 - t0
                latency_ms = 1000 * dt if latency_ms == 0 else 0.9 * latency_ms + 100 * dt
                if last_t is not None:
                    loop_fps = 1.0 / max(1e-6, t1 - last_t)
                    fps_ema = loop_fps if fps_ema == 0 else 0.9 * fps_ema + 0.1 * loop_fps
                last_t = t1
                if overlay:
                    out = _draw_overlay(out, f"{fps_ema:5.1f} fps  {latency_ms:5.1f} ms  {comp_opts.mode}  "
                                             f"{segmenter.model_name}")
                for sink in sinks:
                    # the mask mode writes single-channel alphas to image files (videos need three channels)
                    image = out[..., 0] if comp_opts.mode == "mask" and isinstance(
                        sink, (ImageFolderSink, SingleImageSink)) else out
                    named = isinstance(source, ImageListSource) and source.current_path
                    if isinstance(sink, ImageFolderSink) and named:
                        sink.write(image, name=source.current_path.stem)
                    else:
                        sink.write(image)
                if progress is not None:
                    progress.update(1)
                if window is not None:
                    key = window.poll_key()
                    if key in (ord("q"), 27) or window.closed_by_user:
                        stats.end_reason = "closed by user"
                        break
                    new_kind = {ord("b"): "blur", ord("c"): "color", ord("g"): "green", ord("m"): "mask",
                                ord("i"): "image" if bg_image is not None else None,
                                ord("v"): "video" if bg_video is not None else None}.get(key)
                    if new_kind:
                        comp_opts = dataclasses.replace(comp_opts, mode=new_kind)
                    elif key in (ord("+"), ord("=")):
                        sigma = min(MAX_BLUR, comp_opts.blur_sigma * 1.25)
                        comp_opts = dataclasses.replace(comp_opts, blur_sigma=sigma)
                    elif key == ord("-"):
                        comp_opts = dataclasses.replace(comp_opts, blur_sigma=max(1.0, comp_opts.blur_sigma / 1.25))
                    elif key == ord("t"):
                        alpha_opts = dataclasses.replace(
                            alpha_opts, threshold=None if alpha_opts.threshold is not None else threshold_toggle)
                    elif key == ord("f"):
                        mirror = not mirror
                    elif key == ord("r"):
                        segmenter.reset()
                        prev_alpha = None
                    elif key == ord("h"):
                        say(HELP_KEYS)
        except KeyboardInterrupt:
            stats.end_reason = "interrupted (Ctrl-C)"
        finally:
            stats.seconds = time.perf_counter() - t_start
            expected = 0 if source.live or isinstance(source, ImageListSource) else int(source.frame_count or 0)
            if stats.end_reason == "end of input" and opts.max_frames is None and 1 < expected \
                    and stats.frames < expected - 1 - expected // 50:
                stats.end_reason = (f"end of input after {stats.frames} of the {expected} frames the file announces "
                                    "(it may be truncated or damaged)")
            if meter is not None:
                stats.flicker = meter.value
            if progress is not None:
                progress.close()
    finally:
        interrupted = stats.end_reason.startswith(("interrupted", "stopped")) or sys.exc_info()[0] is not None
        for sink in sinks:
            try:
                sink.close(interrupted=interrupted)
            except Exception as e:  # noqa: BLE001 - report, keep closing the others
                print(f"could not finalise {sink.description}: {e}", file=sys.stderr)
        source.close()
        if bg_video is not None:
            bg_video.close()
    stats.outputs = [s.description for s in sinks if not isinstance(s, WindowSink)]
    return stats
