"""Frame sinks of the live tool: video file, image file(s), image folder, virtual camera (the window:
:mod:`seg_jax.live.window`).

Sinks take (H, W, 3) uint8 RGB frames (single-channel for image files in mask mode). Files are written beside
their target and renamed into place when finalised (``close()``, also through ``with``), so an interrupted run
leaves a playable file and a good older file survives a failed one. A sink a user can get wrong (unwritable
folder, no display, missing pyvirtualcam) raises :class:`SinkError` with a one-line message.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Optional, Union

import cv2
import numpy as np


class SinkError(RuntimeError):
    """An output that cannot be created; the message is meant for the user."""


def partial_path(path: Path) -> Path:
    """Where a sink writes before its file is complete: a hidden sibling with the same extension, renamed onto
    ``path`` only when finalised, so a good file already at ``path`` survives an interrupted or failed run."""
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def check_writable_folder(folder: Path, what: str) -> None:
    """Create ``folder`` and prove a file can be written there, or raise :class:`SinkError` naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".seg_jax-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SinkError(f"cannot write {what} in {folder}: {e.strerror or e}; choose another --output") from None


def write_image_file(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB (or single-channel) image by its extension, atomically (a partial file, then a rename)."""
    tmp = partial_path(path)
    image = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    try:
        ok = cv2.imwrite(str(tmp), np.ascontiguousarray(image))
        if ok:
            os.replace(tmp, path)
    except (OSError, cv2.error) as e:
        ok = False
        reason = f": {e}"
    else:
        reason = ""
    if not ok:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"cannot write {path}{reason}")


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
    source video) its sound track is copied in when the file is finalised."""

    def __init__(self, path: Union[str, os.PathLike], fps: float, codec: str = "auto",
                 audio_from: Optional[Union[str, os.PathLike]] = None):
        self.path = Path(path)
        self.audio_from = Path(audio_from) if audio_from else None   # a media file whose sound track is kept
        self.fps = float(fps) if fps and fps > 0 else 30.0
        ext = self.path.suffix.lower()
        if ext not in (".mp4", ".avi", ".webm", ".mkv", ".mov"):
            raise SinkError(f"unsupported video extension {ext!r} for {self.path}; use .mp4, .avi, .webm or .mkv")
        if codec == "auto":
            from seg_jax.live.audio import ffmpeg_exe
            codec = "h264" if ext in (".mp4", ".mkv", ".mov") and ffmpeg_exe() is not None else \
                {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".webm": "VP80", ".mkv": "MJPG"}[ext]
        self.codec = codec
        check_writable_folder(self.path.parent, "the video")
        self.partial = partial_path(self.path)
        self.size: Optional[tuple[int, int]] = None  # (h, w) of the file
        self._writer: Any = None
        self._ffmpeg = None
        self.frames = 0
        self.description = f"{self.path} ({'H.264' if codec == 'h264' else codec})"

    def _open(self, h: int, w: int) -> None:
        if self.codec == "h264":
            import imageio_ffmpeg
            h, w = h + h % 2, w + w % 2
            self._ffmpeg = imageio_ffmpeg.write_frames(
                str(self.partial), (w, h), fps=self.fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                macro_block_size=1, quality=None, bitrate=None, ffmpeg_log_level="error",
                output_params=["-crf", "20", "-preset", "veryfast", "-movflags", "+faststart"])
            with warnings.catch_warnings():  # jax warns about fork(); ffmpeg is exec'd at once, so it is safe
                warnings.simplefilter("ignore", RuntimeWarning)
                self._ffmpeg.send(None)
        else:
            writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*self.codec), self.fps, (w, h))
            if not writer.isOpened():
                raise SinkError(f"OpenCV cannot write {self.path} with codec {self.codec}")
            self._writer = writer
        self.size = (h, w)

    def write(self, frame: np.ndarray) -> None:
        if self.size is None:
            self._open(*frame.shape[:2])
        h, w = self.size
        if frame.shape[:2] != (h, w):
            fh, fw = frame.shape[:2]
            if (fh + fh % 2, fw + fw % 2) == (h, w):
                frame = np.pad(frame, ((0, h - fh), (0, w - fw), (0, 0)), mode="edge")
            else:
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        if self._ffmpeg is not None:
            self._ffmpeg.send(np.ascontiguousarray(frame))
        else:
            self._writer.write(np.ascontiguousarray(frame[..., ::-1]))
        self.frames += 1

    def close(self, interrupted: bool = False) -> None:
        """Finalise the file and move it onto ``path``; nothing is replaced when no frame was written, and an
        interrupted run leaves a file already at ``path`` as it was, finalising beside it as
        ``<name>.interrupted<ext>`` instead (``self.path`` then names that file)."""
        opened = self._ffmpeg is not None or self._writer is not None
        if self._ffmpeg is not None:
            gen, self._ffmpeg = self._ffmpeg, None
            gen.close()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.release()
        if opened and self.partial.exists():
            if not self.frames:
                self.partial.unlink()
                return
            notes = [self._add_audio()]
            if interrupted and self.path.exists():
                self.path = self.path.with_name(f"{self.path.stem}.interrupted{self.path.suffix}")
                notes.append("interrupted")
            os.replace(self.partial, self.path)
            codec = "H.264" if self.codec == "h264" else self.codec
            self.description = f"{self.path} ({', '.join([codec] + [n for n in notes if n])})"

    def _add_audio(self) -> str:
        """Carry ``audio_from``'s sound track into the finished partial file; -> a note for the description."""
        from seg_jax.live import audio
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
        self.description = f"{self.folder}/ (PNG)"

    def write(self, frame: np.ndarray, name: Optional[str] = None) -> None:
        stem = name or f"{self.prefix}{self.frames:06d}"
        write_image_file(self.folder / f"{stem}.png", frame)
        self.frames += 1


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


__all__ = ["FrameSink", "ImageFolderSink", "SingleImageSink", "SinkError", "VideoFileSink", "VirtualCameraSink",
           "check_writable_folder", "partial_path", "write_image_file"]
