"""Peer models measured in the same run on the same frames.

CPU: MediaPipe selfie segmentation (``mediapipe==0.10.21``: general 256x256 and landscape 144x256 TFLite
models). It pins numpy<2 and jax 0.7, so it lives in its own virtualenv (created on first use, then reused)
and runs as a subprocess (``mediapipe_worker.py``) on frames written to a temporary folder.

The GPU peer (torchvision) is in ``torchvision.py``; ``seg_jax/bench/peer_api.py`` is the interface the bench
uses.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seg_jax.timing import load_average, summarize

MEDIAPIPE_VERSION = "0.10.21"
DEFAULT_PEER_VENV = Path(os.environ.get("SEG_JAX_PEER_VENV", Path.home() / ".cache" / "seg_jax" / "peer-venv"))
PEER_SCRIPT = Path(__file__).with_name("mediapipe_worker.py")


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_mediapipe_venv(venv: Path = DEFAULT_PEER_VENV, *, install: bool = True,
                          timeout_s: float = 900) -> tuple[Path | None, str]:
    """Return (python of a venv with mediapipe==0.10.21, message); (None, reason) if it cannot be had."""
    py = _venv_python(venv)
    check = [str(py), "-c", "import mediapipe as mp; print(mp.__version__)"]
    if py.exists():
        r = subprocess.run(check, capture_output=True, text=True, timeout=120)
        if r.returncode == 0 and r.stdout.strip() == MEDIAPIPE_VERSION:
            return py, f"reused {venv}"
    if not install:
        return None, f"no mediapipe=={MEDIAPIPE_VERSION} virtualenv at {venv} (installation disabled)"
    if venv.exists() and not (venv / "pyvenv.cfg").exists():
        return None, (f"{venv} exists and is not a virtualenv; set SEG_JAX_PEER_VENV to a new folder (nothing in "
                      f"{venv} was changed)")
    created = not venv.exists()    # only a folder made here is ever deleted here
    # The wheel exists for CPython 3.9-3.12; use this interpreter if it fits, else look for one.
    candidates = [sys.executable] if sys.version_info[:2] <= (3, 12) else []
    candidates += ["python3.12", "python3.11", "python3.10", "python3.9"]
    log = []
    for base in candidates:
        try:
            if not py.exists():
                subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            r = subprocess.run([str(py), "-m", "pip", "install", "-q", f"mediapipe=={MEDIAPIPE_VERSION}"],
                               capture_output=True, text=True, timeout=timeout_s)
            if r.returncode == 0:
                r2 = subprocess.run(check, capture_output=True, text=True, timeout=120)
                if r2.returncode == 0:
                    return py, f"installed mediapipe=={MEDIAPIPE_VERSION} into {venv}"
            log.append(f"{base}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        except (OSError, subprocess.SubprocessError) as e:
            log.append(f"{base}: {type(e).__name__}: {e}")
        if created:
            import shutil
            shutil.rmtree(venv, ignore_errors=True)
    return None, f"could not install mediapipe=={MEDIAPIPE_VERSION} into {venv}: {'; '.join(log)[-500:]}"


def _peer_env() -> dict[str, str]:
    """This process's environment without what would point the peer's Python at our packages or XLA flags."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}


def write_frames(frames: Mapping[str, np.ndarray], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(frame, np.uint8))


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
        env = _peer_env()
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
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
    with tempfile.TemporaryDirectory(prefix="seg_jax_eval_peer_") as tmp:
        folder, out = Path(tmp) / "frames", Path(tmp) / "alphas"
        write_frames({f"{i:06d}": f for i, f in enumerate(frames)}, folder)
        cmd = [str(py), str(PEER_SCRIPT), str(folder), str(out), "--alphas"]
        env = _peer_env()
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return {"status": "skipped", "reason": f"peer subprocess ran past {timeout_s:.0f} s"}
        if r.returncode != 0 or not (out / "info.json").exists():
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1][-300:]
            return {"status": "skipped", "reason": f"peer subprocess failed (rc {r.returncode}): {tail}"}
        info = json.loads((out / "info.json").read_text())
        alphas = {m: [np.load(out / m / f"{i:06d}.npy").astype(np.float32) for i in range(len(frames))]
                  for m in MEDIAPIPE_MODELS}
    return {"status": "ok", "version": info.get("mediapipe_version"), "venv": msg, "alphas": alphas}


class MediaPipeSession:
    """The MediaPipe peer kept running in its virtualenv, timing blocks of calls on request.

    For paired measurements: seg_jax and the peer alternate blocks of calls on the same frames, so a machine
    whose speed drifts (a shared VM) slows both alike. Use as a context manager::

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
        self._tmp = tempfile.TemporaryDirectory(prefix="seg_jax_bench_")
        folder = Path(self._tmp.name) / "frames"
        write_frames(frames, folder)
        env = _peer_env()
        # stderr to a file: a chatty library must not fill a pipe nobody reads and stall the peer
        self._stderr_path = Path(self._tmp.name) / "peer.stderr"
        with open(self._stderr_path, "w") as err:
            self._proc = subprocess.Popen([str(py), str(script), str(folder), "-", "--serve", "--warmup",
                                           str(warmup)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=err, text=True, env=env)
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self.info = self._read(start_timeout_s)
        if not self.info.get("ready"):
            self.close()
            raise RuntimeError(f"MediaPipe peer did not start: {self.info}")

    def _pump_stdout(self) -> None:
        # A thread hands stdout lines over a queue: select() on the pipe would miss lines already buffered.
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _read(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(f"MediaPipe peer did not answer within {timeout_s:.0f} s") from None
            if line is None:  # stdout closed: the peer is exiting
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                err = self._stderr_path.read_text(errors="replace")
                raise RuntimeError(f"MediaPipe peer exited (rc {self._proc.returncode}): {err.strip()[-400:]}")
            if line.lstrip().startswith("{"):  # skip anything else a library printed
                return json.loads(line)

    def time(self, model: str, frame: str, iters: int, timeout_s: float = 120) -> list[float]:
        """Per-call wall times in ms of ``iters`` back-to-back ``SelfieSegmentation.process`` calls."""
        self._proc.stdin.write(json.dumps({"model": model, "frame": frame, "iters": int(iters)}) + "\n")
        self._proc.stdin.flush()
        reply = self._read(timeout_s)
        if "times_ms" not in reply:
            raise RuntimeError(f"MediaPipe peer: {reply.get('error', reply)}")
        return reply["times_ms"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.SubprocessError):
                self._proc.kill()
        self._tmp.cleanup()

    def __enter__(self) -> "MediaPipeSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
