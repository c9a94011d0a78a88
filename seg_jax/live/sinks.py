"""Frame sinks of the live tool: video file, image file(s), image folder, virtual camera (the window:
:mod:`seg_jax.live.window`).

Sinks take (H, W, 3) uint8 RGB frames (single-channel for image files in mask mode). Files are written beside
their target and renamed into place when finalised (``close()``, also through ``with``), so an interrupted run
leaves a playable file and a good older file survives a failed one. A sink a user can get wrong (unwritable
folder, no display, missing pyvirtualcam) raises :class:`SinkError` with a one-line message.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np

from seg_jax.common.writer import (
    OutputError,
    atomic_output,
    check_folder,
    check_output,
    failure_line,
    partial_path,
)
from seg_jax.live import audio
from seg_jax.live.frame_rate import frames_until
from seg_jax.live.video_writers import EncodeError, FfmpegWriter, OpenCVWriter

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")


class SinkError(RuntimeError):
    """An output that cannot be created; the message is meant for the user."""


def check_writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written there, or raise :class:`SinkError` naming it."""
    try:
        check_folder(folder, what)
    except OutputError as e:
        raise SinkError(str(e)) from None


def check_replaceable(path: Path) -> None:
    """Refuse an output path that is an existing folder, a read-only file or a looping symlink (the shared
    writer's check, :func:`seg_jax.common.writer.check_output`), as one :class:`SinkError` line."""
    try:
        check_output(path, file_hint="give a file name (or a name without an extension for a folder of PNG "
                     "frames)")
    except OutputError as e:
        raise SinkError(str(e)) from None


def write_image_file(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) image by its extension, atomically (a partial file, then a rename); a
    failure is one :class:`SinkError` line naming the cause (disk full, folder removed...)."""
    image = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    try:
        ok, data = cv2.imencode(path.suffix, np.ascontiguousarray(image))
    except cv2.error as e:
        ok, data = False, str(e).strip().splitlines()[-1:]
    if not ok:
        raise SinkError(f"cannot encode {path.name} as {path.suffix}: {data or 'unsupported'}; use .png or .jpg")
    try:
        with atomic_output(path, make_folder=False) as tmp:    # the sink made and probed the folder
            tmp.write_bytes(data.tobytes())
    except OutputError as e:
        raise SinkError(str(e)) from None


class FrameSink:
    """Consumes RGB frames. ``write(frame)``; ``close()`` finalises (idempotent)."""
    description = "sink"

    def write(self, frame: np.ndarray) -> None:
        raise NotImplementedError

    def close(self, interrupted: bool = False) -> None:
        """Finalise; ``interrupted``: the run was stopped before its end (a file sink keeps an older output)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoFileSink(FrameSink):
    """A video file. ``.mp4``: H.264 via imageio-ffmpeg (plays everywhere; OpenCV's mp4v only without it);
    ``.avi``: MJPG; ``.webm``: VP8; ``.mkv``: H.264 or MJPG. The size is fixed by the first frame; later
    frames of another size are resized to it. Odd sizes are padded to even for H.264. With ``audio_from`` (the
    source video) its sound track is copied in when the file is finalised. An encoder that fails (disk full,
    folder removed) raises :class:`SinkError` from ``write`` or ``close`` and its partial file is discarded, so
    a file already at ``path`` is never replaced by a broken one. With ``keep_timing`` (a variable-frame-rate
    source, :mod:`seg_jax.live.frame_rate`), ``write(frame, pts_ms)`` holds each frame until the next one's
    timestamp at ``fps`` (repeating or dropping frames), so the file plays at the source's speed."""

    def __init__(self, path: Union[str, os.PathLike], fps: float, codec: str = "auto",
                 audio_from: Optional[Union[str, os.PathLike]] = None, keep_timing: bool = False):
        self.path = Path(path)
        self.keep_timing = keep_timing
        self._held: Optional[np.ndarray] = None   # keep_timing: the last frame, repeated until the next one's time
        self.audio_from = Path(audio_from) if audio_from else None   # a media file whose sound track is kept
        self.fps = float(fps) if fps and fps > 0 else 30.0
        ext = self.path.suffix.lower()
        if ext not in VIDEO_EXTENSIONS:
            raise SinkError(f"unsupported video extension {ext!r} for {self.path}; use .mp4, .avi, .webm or .mkv")
        check_replaceable(self.path)
        if codec == "auto":
            from seg_jax.live.audio import ffmpeg_exe
            codec = "h264" if ext in (".mp4", ".mkv", ".mov") and ffmpeg_exe() is not None else \
                {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".webm": "VP80", ".mkv": "MJPG"}[ext]
        self.codec = codec
        check_writable_folder(self.path.parent, "the video")
        self.partial = partial_path(self.path)
        self.size: Optional[tuple[int, int]] = None  # (h, w) of the file
        self._encoder: Any = None
        self.frames = 0
        self.description = f"{self.path} ({'H.264' if codec == 'h264' else codec})"

    def _open(self, h: int, w: int) -> None:
        if self.codec == "h264":
            from seg_jax.live.audio import ffmpeg_exe
            h, w = h + h % 2, w + w % 2
            self._encoder = FfmpegWriter(ffmpeg_exe(), self.partial, (h, w), self.fps)
        else:
            try:
                self._encoder = OpenCVWriter(self.partial, (h, w), self.fps, self.codec)
            except EncodeError as e:
                self.partial.unlink(missing_ok=True)
                raise SinkError(f"cannot write {self.path}: {e.detail}; choose another extension") from None
        self.size = (h, w)

    def _fail(self, error: Exception) -> SinkError:
        """Drop the encoder and its partial file; -> the user's line for ``error``."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            encoder.abort()
        self.partial.unlink(missing_ok=True)
        return SinkError(failure_line(self.path, getattr(error, "detail", None) or getattr(error, "strerror", None)
                                      or str(error), getattr(error, "err", None) or getattr(error, "errno", None)))

    def write(self, frame: np.ndarray, pts_ms: Optional[float] = None) -> None:
        """Add ``frame`` (H, W, 3) RGB; with ``keep_timing`` and its timestamp ``pts_ms``, at its time."""
        if not self.keep_timing or pts_ms is None:
            self._encode(frame)
            return
        start = frames_until(pts_ms, self.fps)
        while self._held is not None and self.frames < start:
            self._encode(self._held)          # the previous frame lasts until this one's time
        if self.frames <= start:
            self._encode(frame)               # (a frame whose time an earlier one already covers is dropped)
        self._held = frame

    def _encode(self, frame: np.ndarray) -> None:
        if self.size is None:
            self._open(*frame.shape[:2])
        if self._encoder is None:
            raise SinkError(f"{self.path} already failed; nothing more is written")
        h, w = self.size
        if frame.shape[:2] != (h, w):
            fh, fw = frame.shape[:2]
            if (fh + fh % 2, fw + fw % 2) == (h, w):
                frame = np.pad(frame, ((0, h - fh), (0, w - fw), (0, 0)), mode="edge")
            else:
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        try:
            self._encoder.write(frame)
        except EncodeError as e:
            raise self._fail(e) from None
        self.frames += 1

    def abort(self) -> None:
        """Stop without finalising: the partial file is discarded and a file already at ``path`` stays as it was
        (for a run that failed, where a finished file would be a worse one)."""
        encoder, self._encoder = self._encoder, None
        if encoder is not None:
            encoder.abort()
        self.partial.unlink(missing_ok=True)

    def close(self, interrupted: bool = False) -> None:
        """Finalise the file and move it onto ``path``; nothing is replaced when no frame was written or the
        encoder failed (then :class:`SinkError` says why), and an interrupted run leaves a file already at
        ``path`` as it was, finalising beside it as ``<name>.interrupted<ext>`` instead (``self.path`` then names
        that file)."""
        encoder, self._encoder = self._encoder, None
        if encoder is None:
            return
        if not self.frames:
            encoder.abort()
            self.partial.unlink(missing_ok=True)
            return
        try:
            encoder.close()
            if not self.partial.is_file():
                raise EncodeError("the finished file vanished", errno.ENOENT)
            notes = [self._add_audio()]
            if interrupted and self.path.exists():
                self.path = self.path.with_name(f"{self.path.stem}.interrupted{self.path.suffix}")
                notes.append("interrupted")
            os.replace(self.partial, self.path)
        except (EncodeError, OSError) as e:
            raise self._fail(e) from None
        codec = "H.264" if self.codec == "h264" else self.codec
        self.description = f"{self.path} ({', '.join([codec] + [n for n in notes if n])})"

    def _add_audio(self) -> str:
        """Carry ``audio_from``'s sound track into the finished partial file; -> a note for the description."""
        if self.audio_from is None or not audio.has_audio(self.audio_from):
            return "" if self.audio_from is None or audio.ffmpeg_exe() else "audio not checked: no ffmpeg"
        with_audio = self.partial.with_name(f"{self.partial.stem}.audio{self.partial.suffix}")
        error = audio.mux_audio(self.partial, self.audio_from, with_audio)
        if error:
            return f"audio not kept: {error}"
        os.replace(with_audio, self.partial)
        return "audio kept"


class SingleImageSink(FrameSink):
    """``--output result.png`` for one image; later frames get ``result_000001.png``..."""

    def __init__(self, path: str):
        self.path = Path(path)
        check_replaceable(self.path)
        check_writable_folder(self.path.parent, "the image")
        self.frames = 0
        self.description = str(self.path)

    def write(self, frame: np.ndarray) -> None:
        p = self.path
        if self.frames:
            p = p.with_name(f"{p.stem}_{self.frames:06d}{p.suffix}")
        write_image_file(p, frame)
        self.frames += 1


class ImageFolderSink(FrameSink):
    """PNG files ``<folder>/<prefix>000000.png``...; with ``names`` the input images' stems are reused."""

    def __init__(self, folder: Union[str, os.PathLike], prefix: str = "frame_"):
        self.folder = Path(folder)
        check_writable_folder(self.folder, "PNG frames")
        self.prefix = prefix
        self.frames = 0
        self._written: set[str] = set()   # stems written by this run (casefolded)
        # PNG files already there: an interrupted rerun leaves some of them beside the new ones, and says so
        self._earlier = {p.stem.casefold() for p in self.folder.glob("*.png")}
        self.description = f"{self.folder}/ (PNG)"

    def write(self, frame: np.ndarray, name: Optional[str] = None) -> None:
        """Write ``frame`` as ``<name or prefix+counter>.png``; a name already written in this run gets the
        counter appended, so no result of the run replaces another."""
        stem = name or f"{self.prefix}{self.frames:06d}"
        if stem.casefold() in self._written:
            stem = f"{stem}_{self.frames:06d}"
        write_image_file(self.folder / f"{stem}.png", frame)
        self._written.add(stem.casefold())
        self.frames += 1

    def close(self, interrupted: bool = False) -> None:
        """An interrupted run into a folder that held PNG files from an earlier run says how many of those are
        still there beside the new ones (the description names both counts)."""
        stale = len(self._earlier - self._written)
        if interrupted and stale:
            self.description = (f"{self.folder}/ (PNG; interrupted: {self.frames} written by this run, {stale} "
                                "older files from an earlier run still there; rerun to finish)")


class VirtualCameraSink(FrameSink):
    """A virtual webcam (pyvirtualcam: v4l2loopback on Linux, OBS on Windows/macOS) that video-call apps see."""

    def __init__(self, fps: float, device: Optional[str] = None):
        try:
            import pyvirtualcam  # noqa: F401
        except ImportError:
            raise SinkError("--virtual-cam needs pyvirtualcam: pip install 'seg_jax[virtualcam]' (and on Linux a "
                            "v4l2loopback device: sudo modprobe v4l2loopback devices=1 exclusive_caps=1)") from None
        self.fps, self.device = float(fps), device
        self.cam = None
        self.description = "virtual camera"

    def write(self, frame: np.ndarray) -> None:
        import pyvirtualcam
        if self.cam is None:
            h, w = frame.shape[:2]
            try:
                self.cam = pyvirtualcam.Camera(width=w, height=h, fps=self.fps, device=self.device)
            except Exception as e:  # noqa: BLE001 - pyvirtualcam raises RuntimeError/ValueError per backend
                raise SinkError(f"no virtual camera backend available ({e}); on Linux load v4l2loopback: "
                                f"sudo modprobe v4l2loopback devices=1 exclusive_caps=1") from None
            self.description = f"virtual camera {self.cam.device}"
            self._size = (h, w)
        if frame.shape[:2] != self._size:
            frame = cv2.resize(frame, (self._size[1], self._size[0]))
        self.cam.send(np.ascontiguousarray(frame))

    def close(self, interrupted: bool = False) -> None:
        if self.cam is not None:
            cam, self.cam = self.cam, None
            cam.close()


__all__ = ["VIDEO_EXTENSIONS", "FrameSink", "ImageFolderSink", "SingleImageSink", "SinkError", "VideoFileSink",
           "VirtualCameraSink", "check_replaceable", "check_writable_folder", "partial_path", "write_image_file"]
