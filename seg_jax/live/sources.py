"""Frame sources of the live tool: webcam, video file, image or image folder, URL, and looped background
videos. Frames are (H, W, 3) uint8 **RGB** everywhere (OpenCV's BGR stays inside this module and
:mod:`seg_jax.live.sinks`). A source a user can get wrong (no camera, unreadable file, missing background) raises
:class:`SourceError` with a one-line message.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import cv2
import numpy as np

SAMPLE_VIDEO = Path(__file__).resolve().parents[1] / "assets" / "sample_office.mp4"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
URL_PREFIXES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source (or background) that cannot be opened or read; the message is meant for the user."""


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
    ``end_reason = 'camera disconnected'`` (or 'stream lost' for URLs). A file's undecodable frames (damaged
    bytes) are skipped while the decoder can go on (up to ``max_file_failures`` failed reads in a row, and never
    past the frame count the file announces); ``end_reason`` then says how many were lost.
    """

    def __init__(self, capture: Any, name: str, live: bool, max_failures: int = 10, max_file_failures: int = 60):
        self.cap, self.name, self.live = capture, name, live
        self.max_failures, self.max_file_failures = max_failures, max_file_failures
        self.skipped = 0          # a file's failed reads that the decoder got past (undecodable frames)
        self.current_pts_ms: Optional[float] = None   # a file's timestamp of the frame last read
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
                if not self.live:
                    self.current_pts_ms = float(self.cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
                if failures and not self.live:
                    self.skipped += failures
                    self.end_reason = f"damaged input: {self.skipped} undecodable frames of {self.name} skipped"
                return bgr_to_rgb(frame)
            if not self.live:
                failures += 1
                announced = self.frame_count or 0
                if failures < self.max_file_failures and (not announced or self._frames + failures <= announced):
                    continue     # a damaged frame: the decoder may go on with the next one
                if self._frames == 0:
                    self.end_reason = f"could not decode any frame of {self.name}"
                elif announced and (self.skipped or self._frames < announced - 1 - announced // 50):
                    self.end_reason = (f"damaged input: {announced - self._frames} of the {announced} frames "
                                       f"{self.name} announces could not be decoded (skipped or cut off)")
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


def read_transparent(path: Path) -> Optional[np.ndarray]:
    """A photo with transparent pixels (PNG/WebP/TIFF with an alpha channel that is not all opaque) as (H, W, 4)
    uint8 RGBA, upright by its EXIF orientation; None for any other file (read it as RGB). The Segmenter treats
    transparent pixels as not person (:func:`seg_jax.inference.segmenter.split_opacity`)."""
    if path.suffix.lower() not in (".png", ".webp", ".tif", ".tiff"):
        return None
    from seg_jax.data.orientation import apply_orientation, exif_orientation
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data:   # an empty file: OpenCV's decoder raises on an empty buffer
        return None
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if img is None or img.ndim != 3 or img.shape[2] != 4:
        return None
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if img.dtype != np.uint8 or img[..., 3].min() == 255:
        return None
    rgba = np.ascontiguousarray(img[..., [2, 1, 0, 3]])
    return apply_orientation(rgba, exif_orientation(data))


def too_large(hw: tuple[int, int]) -> str:
    """'' when an image of size ``hw`` (H, W) can be segmented, else why not (its real size, the limit, the fix)."""
    from seg_jax.inference.segmenter import (
        MAX_FRAME_SIDE,  # the Segmenter's limit (imports jax: only when images are read)
    )
    if max(hw) <= MAX_FRAME_SIDE:
        return ""
    return f"{hw[1]}x{hw[0]} (WxH) is over the {MAX_FRAME_SIDE} px per side limit; downscale it first"


def output_stems(paths: Sequence[Path]) -> list[str]:
    """A distinct output file stem per input image: its own stem, or, where two inputs share one (``a.jpg`` and
    ``a.png``), the name with its extension (``a_jpg``, ``a_png``), numbered if still not unique, so no result
    overwrites another. Compared without case (``a.PNG`` and ``a.png`` would land on one file elsewhere)."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem.casefold()] = counts.get(p.stem.casefold(), 0) + 1
    taken: set[str] = set()
    stems = []
    for p in paths:
        stem = p.stem if counts[p.stem.casefold()] == 1 else p.name.replace(".", "_")
        unique, n = stem, 1
        while unique.casefold() in taken:
            n += 1
            unique = f"{stem}_{n}"
        taken.add(unique.casefold())
        stems.append(unique)
    return stems


class ImageListSource(FrameSource):
    """A single image or a folder of images (sorted by name); ``fps`` is used for a video output.
    ``current_name`` is the output stem of the image last read (distinct per image, :func:`output_stems`)."""

    def __init__(self, paths: Sequence[Path], name: str, fps: float = 25.0):
        self.paths, self.name, self.fps = list(paths), name, fps
        self.frame_count = len(self.paths)
        self._stems = output_stems(self.paths)
        self._i = 0
        self.current_path: Optional[Path] = None
        self.current_name: Optional[str] = None
        self.skipped = 0

    def read(self) -> Optional[np.ndarray]:
        """The next image as (H, W, 3) RGB; an unreadable one or one over the size limit is skipped with one
        line naming it, counted in ``skipped`` and in ``end_reason`` at the end."""
        while self._i < len(self.paths):
            p, stem = self.paths[self._i], self._stems[self._i]
            self._i += 1
            img = read_transparent(p)
            if img is None:
                img = cv2.imread(str(p), cv2.IMREAD_COLOR)
                img = None if img is None else bgr_to_rgb(img)
            problem = "unreadable" if img is None else too_large(img.shape[:2])
            if problem:
                print(f"skipping {p}: {problem}", file=sys.stderr)
                self.skipped += 1
                continue
            self.current_path, self.current_name = p, stem
            return img
        if self.skipped:
            self.end_reason = f"skipped {self.skipped} of {len(self.paths)} images (named above)"
        return None


def quiet_opencv() -> None:
    """OpenCV's own warnings ("can't open camera by index") would follow our one-line message; keep errors. The
    decoder's per-macroblock complaints about a damaged video are silenced too (the summary counts lost frames)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")   # read when OpenCV's FFmpeg backend first opens a file
    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:
        pass


def open_capture(capture_factory: Callable[..., Any], arg: Union[str, int]) -> Any:
    """``capture_factory(arg)`` with OpenCV's own log silenced while it opens (a missing camera or an unreadable
    file is reported by our one line; OpenCV's extra error line would only repeat it less clearly)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    previous = logging.getLogLevel() if logging is not None else None
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return capture_factory(arg)
    finally:
        if logging is not None:
            logging.setLogLevel(previous)


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
        cap = open_capture(capture_factory, int(s))
        if cap is None or not cap.isOpened():
            raise SourceError(f"could not open camera {s}: no camera at that index, or it is busy in another "
                              f"application (try another --source index, or a video file)")
        return CaptureSource(cap, f"camera {s}", live=True)
    if s.startswith(URL_PREFIXES):
        cap = open_capture(capture_factory, s)
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
        problem = too_large(read_image(p).shape[:2])  # fail now if unreadable or too large
        if problem:
            raise SourceError(f"{p}: {problem}")
        return ImageListSource([p], str(p))
    cap = open_capture(capture_factory, str(p))
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


__all__ = ["IMAGE_EXTENSIONS", "SAMPLE_VIDEO", "URL_PREFIXES", "CaptureSource", "FrameSource", "ImageListSource",
           "LoopingVideo", "SourceError", "bgr_to_rgb", "open_capture", "open_source", "quiet_opencv", "read_image",
           "resize_cover"]
