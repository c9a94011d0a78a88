"""The two encoders behind :class:`seg_jax.live.sinks.VideoFileSink`, each of which says when it failed instead of
leaving a broken file behind a success: ffmpeg (H.264) through a pipe whose exit status and last error line are
checked, and OpenCV's ``VideoWriter``, which reports no write errors, so its finished file is read back
(:func:`check_video`). Both take (H, W, 3) uint8 RGB frames of the size they were opened with and raise
:class:`EncodeError` (the raw cause; the sink turns it into the user's line)."""
from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

# system errors an encoder's log may name, looked up by their strerror text
_SYSTEM_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.ENOENT)


class EncodeError(Exception):
    """An encoder failed; ``detail`` is its own words (errno text or ffmpeg's last error line)."""

    def __init__(self, detail: str, err: Optional[int] = None):
        super().__init__(detail)
        self.detail, self.err = detail, err


def check_video(path: Path, frames: int) -> Optional[str]:
    """Read a finished OpenCV-written video back: -> None when its header counts ``frames`` frames and its last
    frame decodes, else the problem. (OpenCV's writers record the exact count; a file cut short by a full disk
    counts none or fewer, or announces them all but ends early, which reading the last frame catches.)"""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return "the finished file cannot be opened (it is incomplete)"
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if count < frames:
            return f"the finished file is incomplete ({max(count, 0)} of the {frames} frames written)"
        cap.set(cv2.CAP_PROP_POS_FRAMES, frames - 1)
        if not cap.read()[0]:
            return f"the finished file is incomplete (its last of {frames} frames cannot be read)"
        return None
    finally:
        cap.release()


def probable_cause(path: Path) -> Optional[int]:
    """For a writer that reports no error: the error number that most likely cut ``path`` short (a nearly full
    disk, or a file that reached the process's file size limit), else None."""
    import shutil
    try:
        if shutil.disk_usage(path.parent).free < 1 << 20:
            return errno.ENOSPC
        import resource
        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and path.stat().st_size >= soft - (1 << 16):
            return errno.EFBIG
    except (OSError, ImportError):
        pass
    return None


class FfmpegWriter:
    """H.264 (libx264, yuv420p) into ``path`` by the ffmpeg binary ``exe``; ``size`` is (h, w), both even."""

    def __init__(self, exe: str, path: Path, size: tuple[int, int], fps: float):
        h, w = size
        cmd = [exe, "-hide_banner", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-r", f"{fps:.6g}", "-i", "-", "-an", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "20",
               "-preset", "veryfast"]
        if path.suffix.lower() in (".mp4", ".mov"):
            cmd += ["-movflags", "+faststart"]
        self._log = tempfile.TemporaryFile()   # ffmpeg's error lines: read when it fails, never shown raw
        with warnings.catch_warnings():  # jax warns about fork(); ffmpeg is exec'd at once, so it is safe
            warnings.simplefilter("ignore", RuntimeWarning)
            self._proc = subprocess.Popen(cmd + [str(path)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=self._log)

    def _error(self) -> EncodeError:
        """Stop ffmpeg; -> its last error line, with the error number its log names (the first system error it
        printed, e.g. 'No space left on device', is the cause; later lines are consequences)."""
        if self._proc.poll() is None:
            self._proc.kill()
        code = self._proc.wait()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        self._log.close()
        lines = [re.sub(r"^\[[^]]*\]\s*", "", line) for line in text.strip().splitlines()]
        found = [(text.find(os.strerror(e)), e) for e in _SYSTEM_ERRORS if os.strerror(e) in text]
        err = min(found)[1] if found else (errno.EFBIG if code == -signal.SIGXFSZ else None)
        return EncodeError(lines[-1] if lines else f"ffmpeg exited with code {code}", err)

    def write(self, rgb: np.ndarray) -> None:
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb).data)
        except OSError:   # the pipe broke: ffmpeg stopped (its log says why)
            self._proc.wait()
            raise self._error() from None

    def close(self) -> None:
        """Finish the file; raises :class:`EncodeError` when ffmpeg did not (e.g. its trailer could not be
        written)."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        if self._proc.wait() != 0:
            raise self._error()
        self._log.close()

    def abort(self) -> None:
        """Stop ffmpeg without finishing the file (which is then discarded)."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._log.close()


class OpenCVWriter:
    """OpenCV's ``VideoWriter`` with ``fourcc`` into ``path``; ``size`` is (h, w)."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, fourcc: str):
        h, w = size
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
        if not self._writer.isOpened():
            raise EncodeError(f"OpenCV cannot write {path.suffix} files with codec {fourcc}")
        self.path, self.frames = path, 0

    def write(self, rgb: np.ndarray) -> None:
        self._writer.write(np.ascontiguousarray(rgb[..., ::-1]))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and read it back; raises :class:`EncodeError` when it is not whole."""
        self._writer.release()
        problem = check_video(self.path, self.frames)
        if problem:
            raise EncodeError(problem, probable_cause(self.path))

    def abort(self) -> None:
        self._writer.release()


__all__ = ["EncodeError", "FfmpegWriter", "OpenCVWriter", "check_video", "probable_cause"]
