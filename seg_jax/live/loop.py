"""The per-frame work of the live tool: frame -> (primary person) alpha -> composite -> fail-safe -> outputs.

:class:`Look` holds what the window's keys change (mode, blur, threshold, mirror); :class:`FrameProcessor` turns
one captured frame into its output; :func:`run_frames` is the loop between a :class:`seg_jax.live.pipeline.Reader`
and a :class:`seg_jax.live.pipeline.Writer`, filling a :class:`seg_jax.live.app.RunStats`.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Optional

import numpy as np

from seg_jax.live.checks import MAX_BLUR
from seg_jax.live.failsafe import Decision, Failsafe, FailsafeOutput
from seg_jax.live.meters import FlickerTracker, LatencyMeter
from seg_jax.live.modes import BY_KEY, BY_NAME, help_keys
from seg_jax.live.people import PrimaryPerson
from seg_jax.live.pipeline import Captured, Reader, Writer
from seg_jax.live.sources import resize_cover
from seg_jax.ops.composite import render

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


def draw_overlay(frame: np.ndarray, lines: list[str]) -> np.ndarray:
    """(H, W, 3) uint8 -> a copy with ``lines`` of text in the top-left corner (white on a black outline)."""
    import cv2
    out = frame.copy()
    scale = max(0.4, frame.shape[1] / 1280)
    for i, text in enumerate(lines):
        y = int(22 * scale) + 4 + int(i * 26 * scale)
        for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
            cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, color, thick, cv2.LINE_AA)
    return out


@dataclasses.dataclass
class Look:
    """What the window's keys change. ``alpha_opts`` / ``comp_opts``: :mod:`seg_jax.ops.composite` options."""
    alpha_opts: Any
    comp_opts: Any
    mirror: bool
    threshold_toggle: float
    backgrounds: frozenset  # the background kinds prepared for this run ('image', 'video' when given)

    def handle_key(self, key: int) -> Optional[str]:
        """Apply a key; -> 'quit', 'reset', 'help' for the loop to act on, else None."""
        if key in (ord("q"), 27):
            return "quit"
        mode = BY_KEY.get(key)
        if mode is not None:
            if mode.background not in ("image", "video") or mode.background in self.backgrounds:
                self.comp_opts = dataclasses.replace(self.comp_opts, mode=mode.name)
        elif key in (ord("+"), ord("=")):
            self.comp_opts = dataclasses.replace(self.comp_opts, blur_sigma=min(MAX_BLUR, self.comp_opts.blur_sigma
                                                                                * 1.25))
        elif key == ord("-"):
            self.comp_opts = dataclasses.replace(self.comp_opts, blur_sigma=max(1.0, self.comp_opts.blur_sigma / 1.25))
        elif key == ord("t"):
            threshold = None if self.alpha_opts.threshold is not None else self.threshold_toggle
            self.alpha_opts = dataclasses.replace(self.alpha_opts, threshold=threshold)
        elif key == ord("f"):
            self.mirror = not self.mirror
        elif key == ord("r"):
            return "reset"
        elif key == ord("h"):
            return "help"
        return None


class FrameProcessor:
    """One captured frame -> ``(output (H, W, 3) uint8, fail-safe decision or None)``, with the state carried
    from frame to frame (previous alpha, primary person, fail-safe, flicker).

    ``stills``: unrelated photos (no state carried, sizes padded to :data:`STILL_BUCKET`, no fail-safe).
    ``failsafe``: 'blur' | 'freeze' | 'off'; it never applies to modes whose output is not the picture (mask).
    """

    def __init__(self, segmenter: Any, look: Look, strength: Any, background_image: Optional[np.ndarray],
                 background_video: Any, *, stills: bool, people: str, failsafe: str):
        self.segmenter, self.look, self.strength, self.stills = segmenter, look, strength, stills
        self.background_image, self.background_video = background_image, background_video
        self.primary = PrimaryPerson() if people == "primary" else None
        self.failsafe = Failsafe() if failsafe != "off" and not stills else None
        self.failsafe_output = FailsafeOutput(failsafe)
        self.flicker = FlickerTracker()
        self.previous = None
        self._cache: dict = {}

    def reset(self) -> None:
        self.segmenter.reset()
        self.previous = None
        self.flicker.reset()
        if self.primary is not None:
            self.primary.reset()

    def background(self, hw):
        import jax.numpy as jnp
        mode = self.look.comp_opts.mode
        if mode == "image" and self.background_image is not None:
            if hw not in self._cache:
                self._cache[hw] = jnp.asarray(resize_cover(self.background_image, hw))
            return self._cache[hw]
        if mode == "video" and self.background_video is not None:
            return self.background_video.next(hw)
        return None

    def announce_compile(self, frame: np.ndarray, say: Callable[[str], None]) -> bool:
        """Say so before a frame of a size that compiles (a photo of a new size); -> whether it was said."""
        hw = pad_to_bucket(frame, STILL_BUCKET).shape[:2] if self.stills else frame.shape[:2]
        will_compile = getattr(self.segmenter, "will_compile", None)
        if will_compile is None or not will_compile(hw):
            return False
        say(f"{hw[1]}x{hw[0]}: compiling for a new frame size...")
        return True

    def warm(self, hw) -> None:
        """Compile the compositing for frames of size ``hw`` (the segmenter is warmed by its own ``warmup``)."""
        import jax.numpy as jnp

        zero = jnp.zeros(hw, jnp.float32)
        mode = self.look.comp_opts.mode
        bg = self.background(hw) if mode == "image" else (jnp.zeros(hw + (3,), jnp.uint8) if mode == "video" else None)
        render(jnp.zeros(hw + (3,), jnp.uint8), zero, zero, bg, self.strength, self.look.alpha_opts,
               self.look.comp_opts)[0].block_until_ready()

    def __call__(self, frame: np.ndarray) -> tuple[np.ndarray, Optional[Decision]]:
        import jax.numpy as jnp

        if self.look.mirror:
            frame = np.ascontiguousarray(frame[:, ::-1])
        h, w = frame.shape[:2]
        if self.stills:
            self.reset()
            frame = pad_to_bucket(frame, STILL_BUCKET)
        background = self.background(frame.shape[:2])
        alpha = self.segmenter.step_device(frame)
        if frame.shape[-1] == 4:   # a photo with transparency: its alpha is in ``alpha``; the picture on grey
            from seg_jax.inference.segmenter import as_rgb_uint8, split_opacity
            frame = as_rgb_uint8(split_opacity(frame)[0])
        if self.primary is not None:
            alpha = jnp.asarray(self.primary.select(np.asarray(alpha)))
        if self.previous is None or self.previous.shape != alpha.shape:
            self.previous = alpha
        out, self.previous = render(frame, alpha, self.previous, background, self.strength, self.look.alpha_opts,
                                    self.look.comp_opts)
        out = np.asarray(out)[:h, :w]
        smoothed = np.asarray(self.previous)[:h, :w]
        self.flicker.update(smoothed)
        decision = None
        if self.failsafe is not None and BY_NAME[self.look.comp_opts.mode].shows_frame:
            decision = self.failsafe.update(frame[:h, :w], smoothed)
            out = self.failsafe_output.apply(out, decision)
        return out, decision


def look_line(look: Look) -> str:
    """The settings the window's keys change, as they are now: mode (with blur strength or colour), soft alpha or
    threshold, mirror."""
    comp = look.comp_opts
    mode = {"blur": f"blur {comp.blur_sigma:.1f}", "color": f"color {','.join(map(str, comp.color))}"}
    alpha = "soft alpha" if look.alpha_opts.threshold is None else f"threshold {look.alpha_opts.threshold:.2f}"
    return f"{mode.get(comp.mode, comp.mode)}  {alpha}" + ("  mirrored" if look.mirror else "")


def failsafe_line(process: FrameProcessor, decision: Optional[Decision]) -> str:
    """The fail-safe's state: off, watching, or what it does to the output now and why."""
    if process.failsafe is None:
        return "fail-safe off"
    if not BY_NAME[process.look.comp_opts.mode].shows_frame:
        return "fail-safe idle (mask mode)"
    if decision is not None and decision.engaged:
        action = "held" if process.failsafe_output.action == "freeze" else "blurred"
        return f"FAIL-SAFE: output {action} ({', '.join(decision.reasons)})"
    return f"fail-safe {process.failsafe_output.action}: watching"


def overlay_lines(fps: float, latency: LatencyMeter, process: FrameProcessor, model: str,
                  decision: Optional[Decision]) -> list[str]:
    """The overlay's text: rates, latency and running flicker; the current settings; the fail-safe's state."""
    ms, flicker = latency.recent_ms, process.flicker.recent
    return [f"{fps:5.1f} fps  {'-' if ms is None else f'{ms:.0f}'} ms  flicker "
            f"{'-' if flicker is None else f'{flicker:.4f}'}  {model}",
            look_line(process.look), failsafe_line(process, decision)]


def run_frames(reader: Reader, writer: Writer, process: FrameProcessor, stats: Any, *, stop: Any,
               window: Any, overlay: bool, latency: LatencyMeter, say: Callable[[str], None],
               on_first: Callable[[Captured], bool], progress: Any = None) -> None:
    """The loop: until the reader ends, ``stop`` is set or the window is closed. Fills ``stats`` (frames, rates,
    end reason); ``writer`` gets ``(captured, output (H, W, 3) uint8, mode name)`` in capture order, with the
    overlay's lines drawn on it when ``overlay``; ``window`` (a :class:`seg_jax.live.window.WindowSink`) always
    shows them, drawn at the size it shows.
    ``on_first(captured)``: called before the first frame, true when it announced a compile. ``stats.started``:
    when the steady state began.
    """
    fps_ema, last_t, announced = 0.0, None, False
    while True:
        captured = reader.get(lambda: bool(stop))
        if captured is None:
            if stop:
                stats.end_reason = stop.reason
            elif reader.source.end_reason:
                stats.end_reason = reader.source.end_reason
            break
        t0 = time.perf_counter()
        if captured.index == 0:
            announced = on_first(captured)
        else:
            announced = process.announce_compile(captured.frame, say)
        out, decision = process(captured.frame)
        t1 = time.perf_counter()
        if announced:
            say(f"compiled in {t1 - t0:.1f} s")
        if captured.index == 0:
            stats.started = t1      # the steady state: the first frame may have compiled
        else:
            stats.process_seconds += t1 - t0
            stats.timed_frames += 1
        if decision is not None and decision.changed:
            say(f"fail-safe {'engaged' if decision.engaged else 'released'} at frame {captured.index}"
                + (f": {', '.join(decision.reasons)}" if decision.engaged else ""))
        if last_t is not None:
            rate = 1.0 / max(1e-6, t1 - last_t)
            fps_ema = rate if fps_ema == 0 else 0.9 * fps_ema + 0.1 * rate
        last_t = t1
        lines = overlay_lines(fps_ema, latency, process, process.segmenter.model_name, decision) \
            if overlay or window is not None else []
        mode = process.look.comp_opts.mode
        writer.put((captured, draw_overlay(out, lines) if overlay else out, mode))
        stats.frames += 1
        if progress is not None:
            progress.update(1)
        if window is not None:
            window.show(out, lines)
            action = process.look.handle_key(window.poll_key())
            if action == "quit" or window.closed_by_user:
                stats.end_reason = "closed by user"
                break
            if action == "reset":
                process.reset()
            elif action == "help":
                window.help_shown = not window.help_shown
                say(help_keys())


__all__ = ["STILL_BUCKET", "FrameProcessor", "Look", "draw_overlay", "failsafe_line", "look_line", "overlay_lines",
           "pad_to_bucket", "run_frames"]
