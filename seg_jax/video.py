"""Frame sources and sinks for the live tool: webcam, video file, image(s), URL; video file, image folder,
window, virtual camera. Frames are (H, W, 3) uint8 **RGB** everywhere (OpenCV's BGR stays inside this module).

Errors a user can cause (no camera, unreadable file, missing background, no display, missing pyvirtualcam)
raise :class:`SourceError` / :class:`SinkError` with a one-line message. Sinks finalise their file on
``close()`` (also through ``with``), so an interrupted run leaves a playable video.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

SAMPLE_VIDEO = Path(__file__).parent / "assets" / "sample_office.mp4"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
URL_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source (or background) that cannot be opened or read; the message is meant for the user."""


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


def bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(frame[..., ::-1]) if frame.ndim == 3 else np.stack([frame] * 3, -1)


def resize_cover(image: np.ndarray, size_hw: Sequence[int]) -> np.ndarray:
    """Scale ``image`` to cover (h, w) and centre-crop (no distortion)."""
    h, w = int(size_hw[0]), int(size_hw[1])
    ih, iw = image.shape[:2]
    if (ih, iw) == (h, w):
        return image
    s = max(h / ih, w / iw)
    nh, nw = max(h, int(round(ih * s))), max(w, int(round(iw * s)))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    scaled = cv2.resize(image, (nw, nh), interpolation=interp)
    y, x = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(scaled[y:y + h, x:x + w])


def read_image(path: Union[str, os.PathLike], what: str = "image") -> np.ndarray:
    """Read an image file as RGB uint8, or raise SourceError."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"{what} not found: {p}")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"{what} is not a readable image: {p}")
    return bgr_to_rgb(img)


# ---------------------------------------------------------------------------------------------- sources
class FrameSource:
    """Iterator of RGB frames. Attributes: ``name``, ``fps``, ``frame_count`` (None if unknown), ``live``,
    ``end_reason`` (why the stream stopped early, e.g. 'camera disconnected'; None at a normal end)."""
    name = "source"
    fps = 30.0
    frame_count: Optional[int] = None
    live = False
    end_reason: Optional[str] = None

    def read(self) -> Optional[np.ndarray]:
        raise NotImplementedError

    def size_hint(self) -> Optional[tuple[int, int]]:
        """(H, W) of the coming frames when known before reading (for compiling ahead), else None."""
        return None

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CaptureSource(FrameSource):
    """A ``cv2.VideoCapture``-like object (``isOpened/read/get/release``): webcam, file or URL.

    For live sources a run of ``max_failures`` failed reads after frames have arrived ends the stream with
    ``end_reason = 'camera disconnected'`` (or 'stream lost' for URLs).
    """

    def __init__(self, capture: Any, name: str, live: bool, max_failures: int = 10):
        self.cap, self.name, self.live = capture, name, live
        self.max_failures = max_failures
        fps = float(capture.get(cv2.CAP_PROP_FPS) or 0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if (count > 0 and not live) else None
        self._frames = 0

    def size_hint(self) -> Optional[tuple[int, int]]:
        try:
            h = int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
            w = int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        except cv2.error:
            return None
        return (h, w) if h > 0 and w > 0 else None

    def read(self) -> Optional[np.ndarray]:
        failures = 0
        while True:
            try:
                ok, frame = self.cap.read()
            except cv2.error:
                ok, frame = False, None
            if ok and frame is not None:
                self._frames += 1
                return bgr_to_rgb(frame)
            if not self.live:
                if self._frames == 0:
                    self.end_reason = f"could not decode any frame of {self.name}"
                return None
            failures += 1
            if failures >= self.max_failures:
                kind = "stream lost" if self.name.startswith(URL_PREFIXES) else "camera disconnected"
                self.end_reason = kind if self._frames else f"no frames from {self.name}"
                return None
            time.sleep(0.01)

    def close(self) -> None:
        try:
            self.cap.release()
        except Exception:  # noqa: BLE001 - releasing a dead device must not mask the real error
            pass


class ImageListSource(FrameSource):
    """A single image or a folder of images (sorted by name); ``fps`` is used for a video output."""

    def __init__(self, paths: Sequence[Path], name: str, fps: float = 25.0):
        self.paths, self.name, self.fps = list(paths), name, fps
        self.frame_count = len(self.paths)
        self._i = 0
        self.current_path: Optional[Path] = None

    def read(self) -> Optional[np.ndarray]:
        while self._i < len(self.paths):
            p = self.paths[self._i]
            self._i += 1
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            if img is None:
                print(f"skipping unreadable image {p}", file=sys.stderr)
                continue
            self.current_path = p
            return bgr_to_rgb(img)
        return None


def open_source(spec: Union[str, int, os.PathLike], *,
                capture_factory: Callable[..., Any] = cv2.VideoCapture) -> FrameSource:
    """Open ``spec``: a webcam index ('0'), 'sample', a video file, an image, an image folder or a URL.

    ``capture_factory`` builds the capture object (tests pass a fake camera).
    """
    s = str(spec)
    if s == "sample":
        if not SAMPLE_VIDEO.is_file():
            raise SourceError(f"the sample video is missing from the installation ({SAMPLE_VIDEO})")
        s = str(SAMPLE_VIDEO)
    if s.isdigit():
        cap = capture_factory(int(s))
        if cap is None or not cap.isOpened():
            raise SourceError(f"could not open camera {s}: no camera at that index, or it is busy in another "
                              f"application (try another --source index, or a video file)")
        return CaptureSource(cap, f"camera {s}", live=True)
    if s.startswith(URL_PREFIXES):
        cap = capture_factory(s)
        if cap is None or not cap.isOpened():
            raise SourceError(f"could not open stream {s} (unreachable, or a format OpenCV cannot read)")
        return CaptureSource(cap, s, live=True)
    p = Path(s)
    if p.is_dir():
        paths = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise SourceError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in folder {p}")
        return ImageListSource(paths, str(p))
    if not p.exists():
        raise SourceError(f"source not found: {p} (expected a camera index, 'sample', a file, folder or URL)")
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        read_image(p)  # fail now if unreadable
        return ImageListSource([p], str(p))
    cap = capture_factory(str(p))
    if cap is None or not cap.isOpened():
        raise SourceError(f"cannot read video {p} (not a video, damaged, or an unsupported codec)")
    src = CaptureSource(cap, str(p), live=False)
    return src


class LoopingVideo:
    """Background video for mode ``video:<path>``: frames resized to cover the output size, looped forever."""

    def __init__(self, path: Union[str, os.PathLike], capture_factory: Callable[..., Any] = cv2.VideoCapture):
        self.path = str(path)
        if not Path(self.path).is_file():
            raise SourceError(f"background video not found: {self.path}")
        self.cap = capture_factory(self.path)
        ok, frame = (self.cap.read() if self.cap.isOpened() else (False, None))
        if not ok:
            raise SourceError(f"background video is not readable: {self.path}")
        self._first = frame

    def next(self, size_hw: Sequence[int]) -> np.ndarray:
        if self._first is not None:
            frame, self._first = self._first, None
        else:
            ok, frame = self.cap.read()
            if not ok:
                self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = self.cap.read()
                if not ok:
                    raise SourceError(f"background video stopped being readable: {self.path}")
        return resize_cover(bgr_to_rgb(frame), size_hw)

    def close(self) -> None:
        self.cap.release()


# ------------------------------------------------------------------------------------------------ sinks
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


def _h264_available() -> bool:
    try:
        import imageio_ffmpeg  # noqa: F401
        return True
    except ImportError:
        return False


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
            codec = "h264" if ext in (".mp4", ".mkv", ".mov") and _h264_available() else \
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
        from seg_jax import audio
        if self.audio_from is None or not audio.has_audio(self.audio_from):
            return "" if self.audio_from is None or audio.ffmpeg_exe() else "audio not checked: no ffmpeg"
        with_audio = self.partial.with_name(f"{self.partial.stem}.audio{self.partial.suffix}")
        error = audio.mux_audio(self.partial, self.audio_from, with_audio)
        if error:
            return f"audio not kept: {error}"
        os.replace(with_audio, self.partial)
        return "audio kept"


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


GUI_INSTALL = ("pip uninstall -y opencv-python-headless && pip install 'opencv-python>=4.10' (the GUI build of "
               "OpenCV; the default install is headless so servers and CI need no display libraries)")


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    at = info.find("GUI:")
    return at < 0 or "NONE" not in info[at:at + 60].split("\n")[0]


def why_no_window() -> str:
    """One line on why no window can open here and what to do, or '' when one can."""
    if not opencv_has_gui():
        return f"this OpenCV has no GUI (opencv-python-headless); for a window: {GUI_INSTALL}"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display here (DISPLAY and WAYLAND_DISPLAY are unset)"
    return "" if has_display() else "OpenCV could not open a window on this display"


def has_display() -> bool:
    """True when an OpenCV window can be shown (a display and a GUI-enabled OpenCV build)."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        cv2.namedWindow("seg_jax probe", cv2.WINDOW_NORMAL)
        cv2.destroyWindow("seg_jax probe")
        return True
    except cv2.error:
        return False


class WindowSink(FrameSink):
    """An OpenCV window; :meth:`poll_key` returns the key pressed (or -1)."""

    def __init__(self, title: str = "seg_jax live"):
        if not has_display():
            raise SinkError(f"cannot show a window: {why_no_window() or 'no display'}; or use --output FILE "
                            "or --no-window")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        self.description = "window"
        self.closed_by_user = False

    def write(self, frame: np.ndarray) -> None:
        cv2.imshow(self.title, np.ascontiguousarray(frame[..., ::-1]))

    def poll_key(self) -> int:
        key = cv2.waitKey(1)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.closed_by_user = True
        except cv2.error:
            self.closed_by_user = True
        return key & 0xFF if key >= 0 else -1

    def close(self, interrupted: bool = False) -> None:
        try:
            cv2.destroyWindow(self.title)
        except cv2.error:
            pass


__all__ = ["SAMPLE_VIDEO", "CaptureSource", "FrameSink", "FrameSource", "ImageFolderSink", "ImageListSource",
           "LoopingVideo", "SinkError", "SourceError", "VideoFileSink", "VirtualCameraSink", "WindowSink",
           "check_writable_folder", "has_display", "open_source", "opencv_has_gui", "partial_path", "read_image",
           "why_no_window",
           "resize_cover", "write_image_file"]
