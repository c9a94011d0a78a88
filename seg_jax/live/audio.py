"""The source's sound track carried into the live tool's output video, with the ffmpeg binary that the
imageio-ffmpeg wheel ships (no system ffmpeg needed). Video frames never pass through here: the finished
silent video is copied as it is and the audio stream added beside it."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Optional

# Audio codec per output container (mp4/mov/mkv: AAC plays everywhere; webm allows only Opus/Vorbis).
AUDIO_CODECS = {".mp4": "aac", ".mov": "aac", ".mkv": "aac", ".webm": "libopus", ".avi": "pcm_s16le"}


def ffmpeg_exe() -> Optional[str]:
    """The ffmpeg binary of imageio-ffmpeg, or None when it is not installed."""
    try:
        import imageio_ffmpeg
        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return None


def has_audio(path: str | Path) -> bool:
    """Whether the media file at ``path`` holds an audio stream (False when ffmpeg is missing)."""
    exe = ffmpeg_exe()
    if exe is None or not Path(path).is_file():
        return False
    probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    return re.search(r"Stream #\d+:\d+.*: Audio:", probe.stderr) is not None


def mux_audio(video: Path, audio_source: Path, out: Path) -> Optional[str]:
    """Write ``out``: the video stream of ``video`` (copied) and the first audio stream of ``audio_source``,
    cut to the video's length. Returns None on success, else ffmpeg's last error line."""
    exe = ffmpeg_exe()
    if exe is None:
        return "ffmpeg is not installed (pip install imageio-ffmpeg)"
    ext = out.suffix.lower()
    cmd = [exe, "-hide_banner", "-v", "error", "-y", "-i", str(video), "-i", str(audio_source),
           "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy", "-c:a", AUDIO_CODECS.get(ext, "aac"), "-shortest"]
    if ext in (".mp4", ".mov"):
        cmd += ["-movflags", "+faststart"]
    result = subprocess.run(cmd + [str(out)], capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not out.is_file():
        out.unlink(missing_ok=True)
        return (result.stderr.strip().splitlines() or [f"ffmpeg exit code {result.returncode}"])[-1]
    return None
