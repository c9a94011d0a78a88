"""The live tool: source -> Segmenter (streaming step) -> render (alpha refinement + composite) -> sinks.

:func:`run` opens everything a user can get wrong first (each failure is one ``LiveError`` line), then runs the
loop of :mod:`seg_jax.live.loop` between a reader and a writer thread (:mod:`seg_jax.live.pipeline`). Outputs are
always finalised (``finally``), so Ctrl-C, a camera unplugged mid-stream or a damaged file still leave a playable
video.
"""
from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from seg_jax.inference.segmenter import DEFAULT_STABILISE, Segmenter
from seg_jax.live.checks import check_choices, check_numbers, check_output_spares_input
from seg_jax.live.display import display_problem
from seg_jax.live.errors import LiveError
from seg_jax.live.frame_rate import probe_rates
from seg_jax.live.loop import STILL_BUCKET, FrameProcessor, Look, draw_overlay, pad_to_bucket, run_frames
from seg_jax.live.meters import LatencyMeter
from seg_jax.live.modes import Mode, help_keys, parse_mode
from seg_jax.live.pipeline import Reader, Writer
from seg_jax.live.presets import apply_preset
from seg_jax.live.signals import StopRequest
from seg_jax.live.sinks import (
    FrameSink,
    ImageFolderSink,
    SingleImageSink,
    SinkError,
    VideoFileSink,
    VirtualCameraSink,
)
from seg_jax.live.sources import (
    IMAGE_EXTENSIONS,
    SAMPLE_VIDEO,
    URL_PREFIXES,
    FrameSource,
    ImageListSource,
    LoopingVideo,
    SourceError,
    open_source,
    read_image,
)
from seg_jax.live.window import WindowSink
from seg_jax.ops.composite import AlphaOptions, CompositeOptions

HELP_KEYS = help_keys()


@dataclasses.dataclass
class LiveOptions:
    """Everything the live tool can do; the CLI flags map 1:1 onto these fields."""
    source: str = "0"
    mode: str = "blur"
    output: Optional[str] = None          # video file (.mp4/.avi/.webm/.mkv), image file, or folder
    window: Optional[bool] = None         # None: a window whenever a display can show one (not for photos to files)
    virtual_cam: bool = False
    virtual_cam_device: Optional[str] = None  # e.g. /dev/video2 (default: the backend's first free device)
    preset: Optional[str] = None          # seg_jax.live.presets name; None: DEFAULT_PRESET
    model: Optional[str] = None           # None: the preset's
    checkpoint: Optional[str] = None      # None: shipped weights; 'random': untrained (demo/benchmark)
    input_size: Optional[str] = None      # None/'auto' or 'HxW' (fixed)
    base_size: Optional[str] = None       # pixel budget of the automatic size ('HxW'); None: the preset's
    keep_aspect: Optional[bool] = None  # None: as the weights' manifest says
    refine: Optional[str] = None          # None: the preset's
    guided_radius: Optional[int] = None  # None: seg_jax.inference.streaming.DEFAULT_GUIDED_RADIUS
    guided_eps: float = 1e-3
    guided_subsample: Optional[int] = None  # fit the guided filter at 1/N of the inference size; None: preset's
    blur: float = 12.0
    threshold: Optional[float] = None     # None: soft alpha
    feather: float = 0.0
    expand: int = 0
    smooth: float = 0.0                   # temporal EMA weight of the previous alpha, [0, 1)
    stabilise: Optional[float] = None     # motion-gated hold strength in [0, 1); None: the Segmenter's default
    mirror: bool = False
    max_frames: Optional[int] = None
    fps: Optional[float] = None           # output frame rate (default: the source's)
    overlay: Optional[bool] = None        # the window's status text on the written frames too (default: no)
    progress: bool = True
    quiet: bool = False
    flicker: bool = False                 # unused: the flicker is always measured (kept for old callers)
    failsafe: str = "blur"                # seg_jax.live.failsafe.ACTIONS
    people: str = "all"                   # seg_jax.live.people.PEOPLE
    pipeline: bool = True                 # read / segment / write in three threads (False: one after the other)
    clean_edges: bool = True              # replace modes: blend the estimated foreground colour, not the frame
    light_wrap: float = 0.0               # replace modes: new background light over the edge, [0, 1]
    every: int = 1                        # run the network on every N-th frame (seg_jax.Segmenter's ``every``)


def stabilise_settings(strength: Optional[float]):
    """--stabilise STRENGTH -> the Segmenter's hold settings (None keeps its default; 0 turns the hold off)."""
    if strength is None:
        return None
    return dataclasses.replace(DEFAULT_STABILISE, strength=float(strength))


@dataclasses.dataclass
class RunStats:
    frames: int = 0                       # frames written
    timed_frames: int = 0                 # frames after the first (compile) one, used for the rates
    seconds: float = 0.0                  # wall time of the timed frames (decode and writing included)
    process_seconds: float = 0.0          # segmentation + compositing + transfer (decode and writing excluded)
    end_reason: str = "end of input"
    flicker: Optional[float] = None       # mean |alpha_t - alpha_{t-1}| of the composited (smoothed) alpha
    latency_median_ms: Optional[float] = None   # capture -> written, over the frames after the first
    latency_p95_ms: Optional[float] = None
    failsafe_frames: int = 0              # frames whose output the fail-safe hid
    started: Optional[float] = None       # perf_counter() when the steady state began (after the first frame)
    outputs: list = dataclasses.field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.timed_frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def process_fps(self) -> float:
        return self.timed_frames / self.process_seconds if self.process_seconds > 0 else 0.0


def _wxh(hw) -> str:
    """(h, w) -> 'WxH' (how video sizes are usually written; every size the tool prints uses this)."""
    return f"{int(hw[1])}x{int(hw[0])}"


def _log(opts: LiveOptions, msg: str) -> None:
    if not opts.quiet:
        print(msg, file=sys.stderr, flush=True)


def audio_source(opts: LiveOptions, source_fps: float) -> Optional[str]:
    """The source file whose sound track the output keeps: a video file written at its own frame rate."""
    source = str(SAMPLE_VIDEO) if opts.source == "sample" else str(opts.source)
    if source.isdigit() or source.startswith(URL_PREFIXES) or Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        return None
    if not Path(source).is_file() or (opts.fps is not None and abs(opts.fps - source_fps) > 1e-3):
        return None
    return source


def output_rate(opts: LiveOptions, source: FrameSource) -> tuple[float, bool]:
    """-> (output frame rate, keep the source's timestamps): a variable-frame-rate video file without ``--fps``
    is written at its nominal rate with its timing kept (:mod:`seg_jax.live.frame_rate`); anything else at
    ``--fps`` or the source's rate, frame for frame."""
    if opts.fps is not None or not opts.output or source.live or isinstance(source, ImageListSource):
        return opts.fps or source.fps, False
    rates = probe_rates(SAMPLE_VIDEO if opts.source == "sample" else opts.source)
    if rates is None or not rates.variable:
        return source.fps, False
    _log(opts, f"{source.name}: variable frame rate ({rates.average:.1f} fps on average): written at its nominal "
               f"{rates.nominal:g} fps, each frame held until the next one's timestamp, so it plays at its speed")
    return rates.nominal, True


def _file_sinks(opts: LiveOptions, fps: float, source_fps: float, keep_timing: bool = False) -> list[FrameSink]:
    """The output file/folder and virtual camera sinks (opened and probed before the model loads)."""
    sinks: list[FrameSink] = []
    if opts.output:
        suffix = Path(opts.output).suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            sinks.append(SingleImageSink(opts.output))
        elif suffix:
            sinks.append(VideoFileSink(opts.output, fps, audio_from=audio_source(opts, source_fps),
                                       keep_timing=keep_timing))
        else:
            sinks.append(ImageFolderSink(opts.output))
    if opts.virtual_cam:
        sinks.append(VirtualCameraSink(fps, opts.virtual_cam_device))
    return sinks


def _open_inputs(opts: LiveOptions, mode: Mode, capture_factory: Callable[..., Any]):
    """-> (source, background image or None, background video or None); backgrounds first, so a missing file
    fails before any model loading."""
    bg_image = bg_video = None
    try:
        if mode.spec.background == "image":
            bg_image = read_image(mode.path, "background image")
        elif mode.spec.background == "video":
            bg_video = LoopingVideo(mode.path, capture_factory)
        return open_source(opts.source, capture_factory=capture_factory), bg_image, bg_video
    except SourceError as e:
        if bg_video is not None:
            bg_video.close()
        raise LiveError(str(e)) from None


def load_segmenter(opts: LiveOptions):
    """The :class:`seg_jax.Segmenter` the options ask for, or a one-line :class:`LiveError`."""
    try:
        return Segmenter(opts.model, opts.checkpoint, opts.input_size, base_size=opts.base_size,
                         keep_aspect=opts.keep_aspect, refine=opts.refine, guided_radius=opts.guided_radius,
                         guided_eps=opts.guided_eps, guided_subsample=opts.guided_subsample,
                         stabilise=stabilise_settings(opts.stabilise), every=opts.every)
    except (FileNotFoundError, ValueError) as e:
        missing_weights = opts.checkpoint is None and isinstance(e, FileNotFoundError)
        hint = " (or --checkpoint random for an untrained speed test)" if missing_weights else ""
        raise LiveError(f"{e}{hint}") from None


def want_window(opts: LiveOptions) -> tuple[bool, str]:
    """-> (whether to open a window, a note to print once the run starts). A window opens when asked for, and by
    default whenever a display can show one (a preview beside the files written; not for photos written to
    files). Decided before anything is opened or written: a window that is needed but cannot open is one
    :class:`LiveError` line naming the ways out; one that is only a preview is skipped with the note."""
    elsewhere = bool(opts.output or opts.virtual_cam)
    if opts.window is False:
        if not elsewhere:
            raise LiveError("nowhere to show the result: --no-window and no --output; pass --output FILE "
                            "(e.g. out.mp4), --output FOLDER/ or --virtual-cam")
        return False, ""
    source = Path(str(opts.source))
    if opts.window is None and elsewhere and (source.is_dir() or source.suffix.lower() in IMAGE_EXTENSIONS):
        return False, ""
    problem = display_problem()
    if not problem:
        return True, ""
    if opts.window is None and elsewhere:
        return False, f"no window ({problem.split(';')[0]}); writing {opts.output or 'to the virtual camera'} only"
    raise LiveError(f"cannot open a window: {problem}")


def _open_window(sinks: list[FrameSink]) -> WindowSink:
    """The window (appended to ``sinks``); its display was probed by :func:`want_window`."""
    try:
        window = WindowSink()
    except SinkError as e:
        raise LiveError(str(e)) from None
    sinks.append(window)
    return window


def output_writer(sinks: list[FrameSink], latency: LatencyMeter) -> Callable[[tuple], None]:
    """The writer thread's job: ``(captured, output, mode)`` -> every sink but the window (which must be drawn
    from the main thread), then the frame's capture-to-output latency."""
    files = [s for s in sinks if not isinstance(s, WindowSink)]

    def write(item: tuple) -> None:
        captured, out, mode = item
        for sink in files:
            # the mask mode writes single-channel alphas to image files (videos need three channels)
            image = out[..., 0] if mode == "mask" and isinstance(sink, (ImageFolderSink, SingleImageSink)) else out
            try:
                if isinstance(sink, ImageFolderSink) and captured.name:
                    sink.write(image, name=captured.name)
                elif isinstance(sink, VideoFileSink):
                    sink.write(image, pts_ms=captured.pts_ms)
                else:
                    sink.write(image)
            except SinkError as e:
                raise LiveError(str(e)) from None
        latency.add(time.perf_counter() - captured.t)
    return write


def _progress_bar(opts: LiveOptions, source: FrameSource):
    if not opts.progress or source.live or opts.quiet or (source.frame_count or 0) <= 1:
        return None
    from tqdm import tqdm
    total = source.frame_count if opts.max_frames is None else min(source.frame_count, opts.max_frames)
    return tqdm(total=total, unit="frame", desc="seg_jax.live", file=sys.stderr, dynamic_ncols=True)


def _processor(opts: LiveOptions, mode: Mode, source: FrameSource, segmenter: Any, bg_image, bg_video):
    import jax.numpy as jnp

    look = Look(AlphaOptions(opts.threshold, int(opts.expand), float(opts.feather)),
                CompositeOptions(mode.kind, float(mode.blur_sigma), mode.color, clean_edges=opts.clean_edges,
                                 light_wrap=float(opts.light_wrap)), opts.mirror,
                opts.threshold if opts.threshold is not None else 0.5,
                frozenset(k for k, v in (("image", bg_image), ("video", bg_video)) if v is not None))
    stills = isinstance(source, ImageListSource) and source.frame_count > 1
    return FrameProcessor(segmenter, look, jnp.float32(opts.smooth), bg_image, bg_video, stills=stills,
                          people=opts.people, failsafe=opts.failsafe)


def _end_reason(stats: RunStats, source: FrameSource, opts: LiveOptions) -> str:
    """The end reason, saying so when a file ended well before the frame count its header announces."""
    if stats.end_reason.startswith("damaged input"):
        return stats.end_reason
    expected = 0 if source.live or isinstance(source, ImageListSource) else int(source.frame_count or 0)
    if stats.end_reason == "end of input" and opts.max_frames is None and 1 < expected \
            and stats.frames < expected - 1 - expected // 50:
        return (f"end of input after {stats.frames} of the {expected} frames the file announces "
                "(it may be truncated or damaged)")
    return stats.end_reason


def _stream(opts: LiveOptions, mode: Mode, source: FrameSource, segmenter: Any, sinks: list[FrameSink],
            window: Optional[WindowSink], backgrounds: tuple, stats: RunStats, stop: StopRequest) -> None:
    """Compile ahead when the frame size is known, then run the loop; fills ``stats``."""
    process = _processor(opts, mode, source, segmenter, *backgrounds)
    hint = source.size_hint()
    if hint is not None:  # compile before the first frame is captured (a webcam keeps streaming meanwhile)
        t0 = time.perf_counter()
        _log(opts, f"{source.name}: {_wxh(hint)} @ {source.fps:.1f} fps; model {segmenter.model_name} at "
                   f"{_wxh(segmenter.input_size_for(hint))}; compiling...")
        segmenter.warmup(hint)
        process.warm(hint)
        _log(opts, f"compiled in {time.perf_counter() - t0:.1f} s")
    progress = _progress_bar(opts, source)

    def say(msg: str) -> None:
        if progress is not None:
            progress.write(msg, file=sys.stderr)
        else:
            _log(opts, msg)

    def on_first(captured) -> bool:
        hw = captured.frame.shape[:2]
        hw = pad_to_bucket(captured.frame, STILL_BUCKET).shape[:2] if process.stills else hw
        if hint != hw:
            say(f"{source.name}: {_wxh(hw)}; model {segmenter.model_name} at "
                f"{_wxh(segmenter.input_size_for(hw))}; compiling...")
        return hint != hw

    latency = LatencyMeter()
    reader = Reader(source, threaded=opts.pipeline, limit=opts.max_frames)
    writer = Writer(output_writer(sinks, latency), threaded=opts.pipeline)
    t_begin = time.perf_counter()
    try:
        try:
            run_frames(reader, writer, process, stats, stop=stop, window=window, latency=latency, say=say,
                       overlay=bool(opts.overlay),
                       on_first=on_first, progress=progress)
        except KeyboardInterrupt:
            stats.end_reason = "interrupted (Ctrl-C)"
        finally:
            reader.close()
            writer.close()   # everything queued is written before the outputs are finalised
    finally:
        stats.seconds = time.perf_counter() - (stats.started or t_begin)
        stats.end_reason = _end_reason(stats, source, opts)
        stats.flicker = process.flicker.value
        stats.latency_median_ms, stats.latency_p95_ms = latency.median_ms, latency.p95_ms
        stats.failsafe_frames = process.failsafe.engaged_frames if process.failsafe is not None else 0
        if progress is not None:
            progress.close()


def _finalise(sinks: list[FrameSink], stats: RunStats) -> None:
    """Close every sink; an output that could not be finished raises one :class:`LiveError` line (unless another
    error is already on its way, which then is the one reported)."""
    interrupted = stats.end_reason.startswith(("interrupted", "stopped")) or sys.exc_info()[0] is not None
    failures = []
    for sink in sinks:
        try:
            sink.close(interrupted=interrupted)
        except Exception as e:  # noqa: BLE001 - report, keep closing the others
            failures.append(str(e) if isinstance(e, SinkError) else f"could not finalise {sink.description}: {e}")
    if failures and sys.exc_info()[0] is None:
        raise LiveError("; ".join(failures))
    for failure in failures:
        print(f"seg_jax.live: {failure}", file=sys.stderr)


def run(opts: LiveOptions, *, capture_factory: Optional[Callable[..., Any]] = None, segmenter: Any = None,
        stop: Optional[StopRequest] = None) -> RunStats:
    """Run the live tool. Raises :class:`LiveError` (one-line message) for bad input; always finalises outputs.

    ``capture_factory``: builds ``cv2.VideoCapture``-like objects (tests inject a fake camera).
    ``segmenter``: an existing :class:`seg_jax.Segmenter` (reuses its compiled steps), or any object with its
    ``step_device / reset / warmup / input_size_for / model_name / manifest``.
    ``stop``: a :class:`StopRequest` the loop checks before each frame (the CLI routes stop signals to it).
    """
    import cv2
    opts = apply_preset(opts)
    capture_factory = capture_factory or cv2.VideoCapture
    stop = stop if stop is not None else StopRequest()
    mode = parse_mode(opts.mode, opts.blur)
    check_numbers(opts)
    check_choices(opts)
    check_output_spares_input(str(opts.source), opts.output)
    window_wanted, window_note = want_window(opts)
    source, bg_image, bg_video = _open_inputs(opts, mode, capture_factory)
    sinks: list[FrameSink] = []
    stats = RunStats()
    try:
        try:
            fps, keep_timing = output_rate(opts, source)
            sinks += _file_sinks(opts, fps, source.fps, keep_timing)
        except SinkError as e:
            raise LiveError(str(e)) from None
        segmenter = segmenter if segmenter is not None else load_segmenter(opts)
        if segmenter.manifest.get("random"):
            _log(opts, "warning: untrained (random) weights: the mask is meaningless; this run only measures speed")
        window = _open_window(sinks) if window_wanted else None
        if window_note:
            _log(opts, window_note)
        _stream(opts, mode, source, segmenter, sinks, window, (bg_image, bg_video), stats, stop)
    finally:
        _finalise(sinks, stats)
        source.close()
        if bg_video is not None:
            bg_video.close()
    # an output no frame reached was not touched (an earlier file there is as it was): it is not named as written
    stats.outputs = [s.description for s in sinks if not isinstance(s, WindowSink) and getattr(s, "frames", 1)]
    return stats


__all__ = ["HELP_KEYS", "LiveError", "LiveOptions", "Mode", "RunStats", "draw_overlay", "load_segmenter",
           "parse_mode", "run"]
