"""The interface every benchmark peer implements, and the registry of peers.

A peer is another tool timed in the same run on the same frames: it has a name, the suite it runs in
(``cpu`` or ``gpu``), a one-line description, whether it can run here (and if not, why), which of its inputs
stands beside which of ours (``pairs``), and ``measure(options, frames) -> {"status", "results", ...}``.
Adding a peer: implement these in a module of its own and add it to ``PEERS``.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Protocol

import numpy as np

from seg_jax.bench.timing import summarize
from seg_jax.peers.mediapipe import ensure_mediapipe_venv, run_mediapipe
from seg_jax.peers.torchvision import run_torchvision_lraspp


@dataclasses.dataclass(frozen=True)
class InputPair:
    """Our network input (H, W) beside the peer's model and the frame key ('HxW') it is timed on."""
    ours: tuple[int, int]
    peer_model: str
    peer_frame: str


class Peer(Protocol):
    name: str
    suite: str
    description: str
    pairs: tuple[InputPair, ...]

    def availability(self, install: bool) -> tuple[bool, str]:
        """(True, how) when the peer can run here, else (False, one line saying why)."""

    def frame_sizes(self, options: Any) -> list[tuple[int, int]]:
        """The (H, W) frames ``measure`` needs."""

    def measure(self, options: Any, frames: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """{"status": "ok", "results": [{"model", ..., "median_ms"}], ...} or {"status": "skipped", "reason"}."""


class MediaPipePeer:
    """MediaPipe's selfie segmenter (general 256x256, landscape 144x256) in its own virtualenv (CPU suite)."""
    name = "mediapipe"
    suite = "cpu"
    description = ("MediaPipe selfie segmentation (TFLite, XNNPACK), SelfieSegmentation.process on the same frames, "
                   "in its own virtualenv (subprocess)")
    # MediaPipe's landscape model is 144x256; ours needs multiples of 32 and runs at 160x256 in its place
    pairs = (InputPair((256, 256), "general_256x256", "256x256"),
             InputPair((160, 256), "landscape_144x256", "144x256"))

    def availability(self, install: bool) -> tuple[bool, str]:
        py, message = ensure_mediapipe_venv(install=install)
        return py is not None, message

    def frame_sizes(self, options: Any) -> list[tuple[int, int]]:
        theirs = {tuple(int(v) for v in p.peer_frame.split("x")) for p in self.pairs}
        return sorted({tuple(s) for s in options.sizes} | {p.ours for p in self.pairs} | theirs
                      | {tuple(f) for f in options.frames})

    def measure(self, options: Any, frames: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return run_mediapipe(frames, warmup=options.warmup, iters=options.peer_iters, install=options.peer_install)


class TorchvisionPeer:
    """torchvision LR-ASPP MobileNetV3-Large on the GPU, eager and torch.compile (GPU suite)."""
    name = "torchvision"
    suite = "gpu"
    description = "torchvision LR-ASPP MobileNetV3-Large (random weights: speed only), eager and torch.compile"
    pairs = ()

    def availability(self, install: bool) -> tuple[bool, str]:
        try:
            import torch
        except ImportError as e:
            return False, f"torch not importable: {e}"
        return (True, "torch with CUDA") if torch.cuda.is_available() else (False, "no CUDA device for torch")

    def frame_sizes(self, options: Any) -> list[tuple[int, int]]:
        return []

    def measure(self, options: Any, frames: Mapping[str, np.ndarray]) -> dict[str, Any]:
        return run_torchvision_lraspp(sizes=[tuple(options.sizes[0])], batch_sizes=[1, options.throughput_batch],
                                      warmup=options.warmup, iters=options.iters)


class IsolatedOnnxPeer:
    """RVM or MODNet (ONNX in its own virtualenv, :mod:`seg_jax.peers.isolated`) timed on the end-to-end frames:
    a frame in, the alpha at the frame's size out (CPU suite)."""
    suite = "cpu"
    pairs = ()

    def __init__(self, name: str, module: str, description: str):
        self.name, self._module, self.description = name, module, description

    def peer(self):
        import importlib
        return importlib.import_module(self._module).PEER

    @property
    def model(self) -> str:
        return self.peer().models[0]

    def availability(self, install: bool) -> tuple[bool, str]:
        py, message = self.peer().ensure(install)
        return py is not None, message

    def frame_sizes(self, options: Any) -> list[tuple[int, int]]:
        return sorted({tuple(f) for f in options.frames})

    def measure(self, options: Any, frames: Mapping[str, np.ndarray]) -> dict[str, Any]:
        try:
            with self.peer().session(frames, warmup=options.warmup, install=options.peer_install) as session:
                results = []
                for frame in frames:
                    times = np.asarray(session.time(self.model, frame, options.peer_iters)) / 1e3
                    results.append({"model": self.model, "frame": frame, **summarize(times)})
                info = session.info
        except RuntimeError as e:
            return {"status": "skipped", "reason": str(e)}
        return {"status": "ok", "version": {k: v for k, v in info.items() if k != "ready"}, "results": results}


MEDIAPIPE = MediaPipePeer()
RVM = IsolatedOnnxPeer("rvm", "seg_jax.peers.rvm", "RVM MobileNetV3 fp32 ONNX (onnxruntime, ~384 px internally, "
                       "recurrent state carried), in its own virtualenv (subprocess)")
MODNET = IsolatedOnnxPeer("modnet", "seg_jax.peers.modnet", "MODNet ONNX (onnxruntime, short side 512), in its own "
                          "virtualenv (subprocess)")
ISOLATED_BENCH_PEERS = (RVM, MODNET)
PEERS: tuple[Peer, ...] = (MEDIAPIPE, RVM, MODNET, TorchvisionPeer())

__all__ = ["ISOLATED_BENCH_PEERS", "InputPair", "IsolatedOnnxPeer", "MEDIAPIPE", "MODNET", "MediaPipePeer", "PEERS",
           "Peer", "RVM", "TorchvisionPeer"]
