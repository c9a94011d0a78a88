"""Peer models measured in the same run on the same frames.

CPU: MediaPipe selfie segmentation (``mediapipe==0.10.21``: general 256x256 and landscape 144x256 TFLite
models). It pins numpy<2 and jax 0.7, so it lives in its own virtualenv (created on first use, then reused)
and runs as a subprocess (``mediapipe_worker.py``) on frames written to a temporary folder; the virtualenv and
subprocess machinery is :mod:`seg_jax.peers.isolated`, shared with RVM (``rvm.py``) and MODNet (``modnet.py``).

The GPU peer (torchvision) is in ``torchvision.py``; ``seg_jax/bench/peer_api.py`` is the interface the bench
uses.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seg_jax.bench.timing import load_average, summarize
from seg_jax.peers.isolated import CACHE, PeerEnv, PeerSession, ensure_venv, peer_env, worker_alphas, write_frames

MEDIAPIPE_VERSION = "0.10.21"
DEFAULT_PEER_VENV = Path(os.environ.get("SEG_JAX_PEER_VENV", CACHE / "peer-venv"))
PEER_SCRIPT = Path(__file__).with_name("mediapipe_worker.py")


def mediapipe_env(venv: Path = DEFAULT_PEER_VENV) -> PeerEnv:
    return PeerEnv(label=f"mediapipe=={MEDIAPIPE_VERSION}", venv=Path(venv),
                   installs=((f"mediapipe=={MEDIAPIPE_VERSION}",),),
                   check="import mediapipe as mp; print(mp.__version__)", expect=MEDIAPIPE_VERSION)


def ensure_mediapipe_venv(venv: Path = DEFAULT_PEER_VENV, *, install: bool = True,
                          timeout_s: float = 900) -> tuple[Path | None, str]:
    """Return (python of a venv with mediapipe==0.10.21, message); (None, reason) if it cannot be had."""
    return ensure_venv(mediapipe_env(venv), install=install, timeout_s=timeout_s)


def run_mediapipe(frames: Mapping[str, np.ndarray], *, warmup: int, iters: int, venv: Path = DEFAULT_PEER_VENV,
                  install: bool = True, timeout_s: float = 900) -> dict[str, Any]:
    """Time MediaPipe's selfie segmenter (both models) on ``frames`` in its own venv.

    Returns {"status": "ok", "version", "results": [{"model", "frame", ..., "median_ms", ...}]} or
    {"status": "skipped", "reason"}.
    """
    py, msg = ensure_mediapipe_venv(venv, install=install)
    if py is None:
        print(f"[bench] MediaPipe peer skipped: {msg}", file=sys.stderr)
        return {"status": "skipped", "reason": msg}
    with tempfile.TemporaryDirectory(prefix="seg_jax_bench_") as tmp:
        folder = Path(tmp) / "frames"
        write_frames(frames, folder)
        out = Path(tmp) / "mediapipe.json"
        cmd = [str(py), str(PEER_SCRIPT), str(folder), str(out), "--warmup", str(warmup), "--iters", str(iters)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=peer_env())
        if r.returncode != 0 or not out.exists():
            reason = f"peer subprocess failed (rc {r.returncode}): {r.stderr.strip()[-400:]}"
            print(f"[bench] MediaPipe peer skipped: {reason}", file=sys.stderr)
            return {"status": "skipped", "reason": reason}
        raw = json.loads(out.read_text())
    results = []
    for res in raw["results"]:
        stats = summarize(np.asarray(res.pop("times_ms")) / 1e3)
        results.append({**res, **stats})
    return {"status": "ok", "version": raw.get("mediapipe_version"), "python": raw.get("python"),
            "venv": msg, "wall_s": time.perf_counter() - t0, "load_avg_after": load_average(),
            "what": "SelfieSegmentation.process(frame): resize to model input, TFLite (XNNPACK) inference, "
                    "mask upsampled to frame size; frames identical to seg_jax's",
            "results": results}


MEDIAPIPE_MODELS = ("general_256x256", "landscape_144x256")


def mediapipe_alphas(frames: list[np.ndarray], *, venv: Path = DEFAULT_PEER_VENV, install: bool = True,
                     timeout_s: float = 1800) -> dict[str, Any]:
    """MediaPipe's selfie segmenter (both models) on ``frames`` (uint8 RGB (H, W, 3), processed in order).

    Returns {"status": "ok", "version", "alphas": {model: [float32 (H, W) in [0, 1] per frame]}} or
    {"status": "skipped", "reason": one line} when the peer's virtualenv or subprocess cannot be had.
    """
    py, msg = ensure_mediapipe_venv(venv, install=install)
    if py is None:
        return {"status": "skipped", "reason": msg}
    got = worker_alphas(py, PEER_SCRIPT, frames, MEDIAPIPE_MODELS, timeout_s=timeout_s)
    if got["status"] != "ok":
        return got
    return {"status": "ok", "version": got["info"].get("mediapipe_version"), "venv": msg, "alphas": got["alphas"]}


class MediaPipeSession(PeerSession):
    """The MediaPipe peer kept running in its virtualenv, timing blocks of calls on request
    (:class:`seg_jax.peers.isolated.PeerSession`)::

        with MediaPipeSession(frames, warmup=10) as mp:
            times_ms = mp.time("general_256x256", "256x256", iters=10)

    Raises ``RuntimeError`` (one line, with the reason) when the peer cannot be started.
    """

    def __init__(self, frames: Mapping[str, np.ndarray], *, warmup: int, venv: Path = DEFAULT_PEER_VENV,
                 install: bool = True, start_timeout_s: float = 300, python: Path | None = None,
                 script: Path = PEER_SCRIPT):
        # ``python``/``script``: another interpreter and server speaking the same protocol (tests)
        py, msg = (python, f"given {python}") if python is not None else ensure_mediapipe_venv(venv, install=install)
        if py is None:
            raise RuntimeError(msg)
        self.venv_message = msg
        super().__init__(py, script, frames, warmup=warmup, label="MediaPipe", start_timeout_s=start_timeout_s)
