"""The whole background-blur job written with MediaPipe, run INSIDE the peer virtualenv (mediapipe==0.10.21):
decode a video, segment each frame with the selfie segmenter, blur the background, blend, encode H.264.

Stand-alone on purpose (no seg_jax import: numpy<2 there). Usage::

    python mediapipe_job.py SOURCE OUTPUT.mp4 --ffmpeg FFMPEG [--frames N] [--model 0|1] [--naive]

Written as a careful user would: the background blurred at a quarter of the size like seg_jax's (a Gaussian of
``--blur`` / 4 pixels there, then upsampled), the blend done by OpenCV (``cv2.blendLinear``), frames piped to the
same ffmpeg with the same H.264 settings as seg_jax's ``VideoFileSink`` (libx264, CRF 20, preset veryfast,
yuv420p). ``--naive``: the full-size blur and a numpy float blend most example scripts use.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

# This script's folder holds seg_jax's own modules: keep it off sys.path so `import mediapipe` finds the package.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def encoder(ffmpeg: str, path: str, w: int, h: int, fps: float) -> subprocess.Popen:
    """ffmpeg reading rgb24 frames on stdin -> H.264 ``path`` (the settings of seg_jax's VideoFileSink)."""
    return subprocess.Popen([ffmpeg, "-y", "-v", "error", "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}",
                             "-pix_fmt", "rgb24", "-r", f"{fps:.3f}", "-i", "-", "-an", "-vcodec", "libx264",
                             "-pix_fmt", "yuv420p", "-crf", "20", "-preset", "veryfast", "-movflags", "+faststart",
                             path], stdin=subprocess.PIPE)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("source")
    p.add_argument("output")
    p.add_argument("--ffmpeg", required=True)
    p.add_argument("--frames", type=int, default=10 ** 9)
    p.add_argument("--model", type=int, default=0, help="0: general 256x256, 1: landscape 144x256")
    p.add_argument("--blur", type=float, default=12.0)
    p.add_argument("--naive", action="store_true")
    a = p.parse_args()
    import cv2
    import mediapipe as mp
    import numpy as np

    cap = cv2.VideoCapture(a.source)
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    enc = encoder(a.ffmpeg, a.output, w, h, cap.get(cv2.CAP_PROP_FPS) or 30.0)
    small_size = (max(1, w // 4), max(1, h // 4))
    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=a.model) as seg:
        for _ in range(a.frames):
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            mask = seg.process(rgb).segmentation_mask            # (H, W) float32 person probability
            if a.naive:
                background = cv2.GaussianBlur(rgb, (0, 0), a.blur)
                m = mask[..., None]
                out = (rgb * m + background * (1.0 - m)).astype(np.uint8)
            else:
                small = cv2.resize(rgb, small_size, interpolation=cv2.INTER_AREA)
                background = cv2.resize(cv2.GaussianBlur(small, (0, 0), a.blur / 4), (w, h),
                                        interpolation=cv2.INTER_LINEAR)
                out = cv2.blendLinear(rgb, background, mask, 1.0 - mask)
            enc.stdin.write(out.tobytes())
    cap.release()
    enc.stdin.close()
    enc.wait()


if __name__ == "__main__":
    main()
