"""The fail-safe engaging, as a picture: ``python -m research.failsafe_figure`` -> results/figures/failsafe.png.

The sample clip runs through the live tool (shipped weights, blur mode, overlay on) with its source frozen
half-way (one frame repeated, as a stuck camera driver does); the figure puts the last output before the
fail-safe engaged beside the first output after it, with the overlay's fail-safe line.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence

import numpy as np


class _FrozenHalfway:
    """A ``cv2.VideoCapture`` stand-in: the sample clip's first ``at`` frames, then frame ``at`` ``hold`` times."""

    def __init__(self, path: str, at: int, hold: int):
        import cv2
        self.cap, self.at, self.hold, self.i, self.last = cv2.VideoCapture(path), at, hold, 0, None
        self.get = self.cap.get

    def isOpened(self):
        return self.cap.isOpened()

    def read(self):
        self.i += 1
        if self.i <= self.at + 1:
            ok, self.last = self.cap.read()
            return ok, self.last
        if self.i <= self.at + 1 + self.hold:
            return True, self.last.copy()
        return False, None

    def release(self):
        self.cap.release()


def _label(image: np.ndarray, text: str) -> np.ndarray:
    import cv2
    bar = np.full((28, image.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, image], 0)


def make_figure(out: Path, at: int = 60, hold: int = 12) -> Path:
    import cv2

    from seg_jax.live.app import LiveOptions, run
    from seg_jax.live.failsafe import FailsafeRule
    from seg_jax.live.sources import SAMPLE_VIDEO
    engage = FailsafeRule().engage_after
    with tempfile.TemporaryDirectory() as tmp:
        stats = run(LiveOptions(source="sample", mode="blur", output=tmp + "/", overlay=True, quiet=True,
                                max_frames=at + 1 + hold),
                    capture_factory=lambda *_: _FrozenHalfway(str(SAMPLE_VIDEO), at, hold))
        first_hidden = at + engage      # frames at+1.. are frozen; the engage_after-th of them is hidden
        if stats.failsafe_frames == 0:
            raise RuntimeError("the fail-safe did not engage on the frozen clip")
        before = cv2.imread(f"{tmp}/frame_{first_hidden - 1:06d}.png")
        after = cv2.imread(f"{tmp}/frame_{first_hidden:06d}.png")
    gap = np.full((before.shape[0] + 28, 8, 3), 255, np.uint8)
    figure = np.concatenate([_label(before, f"frame {first_hidden - 1}: background blurred"), gap,
                             _label(after, f"frame {first_hidden}: source frozen, whole output blurred")], 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), figure)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.failsafe_figure", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/figures/failsafe.png")
    args = p.parse_args(argv)
    print(make_figure(Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
