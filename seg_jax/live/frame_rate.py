"""Variable frame rate: a video file whose frames are not evenly spaced (phones, screen recordings) is written at
its nominal rate with each frame held until the next one's timestamp, so it plays at the source's speed (a
constant rate equal to the average would play its fast parts slowed down and its slow parts sped up).

:func:`probe_rates` reads the average and the nominal rate from ffmpeg's description of the file (OpenCV reports
only one of them); :func:`frames_until` is the resampling rule the video sink applies.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
from pathlib import Path
from typing import Optional

from seg_jax.live.audio import ffmpeg_exe


@dataclasses.dataclass(frozen=True)
class Rates:
    average: float    # frames / duration (ffmpeg's "fps")
    nominal: float    # the base rate of the timestamps (ffmpeg's "tbr")

    @property
    def variable(self) -> bool:
        """Whether the frames are unevenly spaced (the average is not the nominal rate, beyond rounding)."""
        return self.nominal > 0 and abs(self.average - self.nominal) > 0.01 * self.nominal


def _rate(text: str, unit: str) -> Optional[float]:
    match = re.search(r"([\d.]+)(k?) " + unit + r"\b", text)
    if match is None:
        return None
    return float(match.group(1)) * (1000.0 if match.group(2) else 1.0)


def probe_rates(path: str | Path) -> Optional[Rates]:
    """The first video stream's (average, nominal) rates, or None (no ffmpeg, not a file, no such stream)."""
    exe = ffmpeg_exe()
    if exe is None or not Path(path).is_file():
        return None
    try:
        probe = subprocess.run([exe, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    stream = next((line for line in probe.stderr.splitlines() if re.search(r"Stream #\d+:\d+.*: Video:", line)), "")
    average, nominal = _rate(stream, "fps"), _rate(stream, "tbr")
    return Rates(average, nominal) if average and nominal else None


def frames_until(pts_ms: float, fps: float) -> int:
    """The output frame index at which a frame with timestamp ``pts_ms`` starts, at ``fps`` frames/s."""
    return int(round(pts_ms * fps / 1000.0))


__all__ = ["Rates", "frames_until", "probe_rates"]
