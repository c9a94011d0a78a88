"""Run an exported seg_jax ONNX model with onnxruntime: frames in, soft alpha out. Imports no jax or flax.

    from seg_jax.onnx.runtime import OnnxSegmenter
    seg = OnnxSegmenter("model.onnx")        # from python -m seg_jax.export --format onnx
    alpha = seg.step(frame_rgb_uint8)        # (H, W, 3) uint8 RGB -> (H, W) float32 in [0, 1]

The network runs at the inference size :func:`seg_jax.inference.sizes.choose_input_size` gives (the rule the JAX
Segmenter uses: the exported weights' base size, 256x256 unless the model says otherwise, adapted to the frame's
aspect ratio in multiples of 32 unless the weights' ``keep_aspect`` is false) or at ``input_size``; the frame is
shrunk with OpenCV's INTER_AREA, divided by 255, and the probability is upsampled back bilinearly. For the ConvLSTM
model the recurrent state is carried between calls (zeros after :meth:`OnnxSegmenter.reset` or when the inference
size changes).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seg_jax.artifacts.settle import check_settle_steps
from seg_jax.inference.sizes import (
    DEFAULT_INPUT_SIZE,
    SIZE_MULTIPLE,
    check_input_size,
    choose_input_size,
    parse_size,
)


class OnnxModelError(ValueError):
    """A model file that is missing, not ONNX, or not a seg_jax export; the message is one line."""


def load_session(path: str | os.PathLike, threads: int = 0):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``path``, or a one-line :class:`OnnxModelError`."""
    import onnxruntime as ort
    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"model file {path} does not exist; export one with "
                             "python -m seg_jax.export --format onnx --model mobilenet --out model.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    # no busy-waiting worker threads: on a shared or small CPU (and between the frames of a video loop, where
    # decoding and compositing need the cores) spinning threads made each call slower, not faster
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4  # our own one-line errors instead of onnxruntime's log
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises InvalidProtobuf / Fail / InvalidGraph for bad files
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise OnnxModelError(f"{path} is not a loadable ONNX model ({first})") from None
    names = [i.name for i in session.get_inputs()]
    if "image" not in names or "mask" not in [o.name for o in session.get_outputs()]:
        raise OnnxModelError(f"{path} is an ONNX model but not a seg_jax export (inputs {names}); "
                             "export one with python -m seg_jax.export --format onnx")
    shape = next(i for i in session.get_inputs() if i.name == "image").shape
    if len(shape) != 4 or shape[3] != 3:   # seg_jax exports take (N, H, W, 3): an NCHW graph fails on every frame
        raise OnnxModelError(f"{path} takes 'image' of shape {list(shape)}, not (N, H, W, 3) RGB (channels last, "
                             "as seg_jax exports it); export one with python -m seg_jax.export --format onnx")
    return session


class OnnxSegmenter:
    """One frame at a time through an exported model, the ConvLSTM state carried between calls.

    Args:
      path: the ``.onnx`` file.
      input_size: None (automatic, see module docstring) or (h, w), multiples of the model's size multiple.
      threads: onnxruntime intra-op threads (0: its default, all cores).
    """

    def __init__(self, path: str | os.PathLike, input_size: Optional[Sequence[int]] = None, threads: int = 0):
        self.session = load_session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.model_name = meta.get("seg_jax.model", "unknown")
        self.multiple = int(meta.get("seg_jax.size_multiple", 32))
        base = self._base_size(meta.get("seg_jax.input_size", "null"), path)
        self.keep_aspect = meta.get("seg_jax.keep_aspect", "true").strip().lower() != "false"
        image = next(i for i in self.session.get_inputs() if i.name == "image")
        dims = image.shape[1:3]
        self.graph_size = tuple(dims) if all(isinstance(d, int) for d in dims) else None
        self.base_size = self.graph_size or base
        self.state_inputs = [i for i in self.session.get_inputs() if i.name != "image"]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.fixed_size = self.check_size(input_size) if input_size is not None else None
        self._state: Optional[dict[str, np.ndarray]] = None
        self._state_size: Optional[tuple[int, int]] = None
        # extra runs over a stream's first frame (the weights' settle_steps; see
        # seg_jax.inference.streaming.StreamingStep)
        self.settle_steps = self._settle_steps(meta.get("seg_jax.settle_steps", "0"), path) if self.state_inputs else 0

    @staticmethod
    def _base_size(text: str, path) -> tuple[int, int]:
        """The export's base inference size (metadata ``seg_jax.input_size``, JSON [h, w]; 256x256 when absent),
        checked like the Segmenter checks a manifest's, or a one-line :class:`OnnxModelError`."""
        try:
            return check_input_size(parse_size(json.loads(text), auto=True)) or DEFAULT_INPUT_SIZE
        except ValueError as e:
            raise OnnxModelError(f"{path} metadata seg_jax.input_size {text!r} is not usable ({e}); re-export it "
                                 "with python -m seg_jax.export --format onnx") from None

    @staticmethod
    def _settle_steps(text: str, path) -> int:
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        return check_settle_steps(value, f"{path} metadata seg_jax.settle_steps (re-export it with python -m "
                                         "seg_jax.artifacts.export --format onnx)")

    @property
    def recurrent(self) -> bool:
        return bool(self.state_inputs)

    def check_size(self, size: Sequence[int]) -> tuple[int, int]:
        """``size`` as (h, w) if this graph can take it, else a one-line ValueError."""
        h, w = int(size[0]), int(size[1])
        try:
            check_input_size((h, w), self.multiple)
        except ValueError as e:
            raise ValueError(f"input size {h}x{w} cannot be taken by this model: {e}") from None
        if self.graph_size is not None and (h, w) != self.graph_size:
            raise ValueError(f"input size {h}x{w} cannot be taken by this model: it was exported for "
                             f"{self.graph_size[0]}x{self.graph_size[1]} only (export without --size for any size)")
        return h, w

    def input_size_for(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        if self.fixed_size is not None:
            return self.fixed_size
        if self.graph_size is not None:
            return self.graph_size
        # multiples of 32 as in the JAX Segmenter, whose choice this is, and of what the graph needs
        return choose_input_size(frame_hw, self.base_size, keep_aspect=self.keep_aspect,
                                 multiple=math.lcm(SIZE_MULTIPLE, self.multiple))

    def reset(self) -> None:
        """Forget the recurrent state (between unrelated clips)."""
        self._state, self._state_size = None, None

    def _zero_state(self, h: int, w: int) -> dict[str, np.ndarray]:
        """Zero (1, h / s, w / s, C) arrays for the state inputs, sizes read from their symbolic dims."""
        def dim(d, full_h, full_w):
            if isinstance(d, int):
                return d
            axis, _, scale = str(d).partition("/")
            v = full_h if axis == "height" else full_w
            return v // int(scale) if scale else v
        return {i.name: np.zeros((1,) + tuple(dim(d, h, w) for d in i.shape[1:]), np.float32)
                for i in self.state_inputs}

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) float32 in [0, 1] at an accepted size -> (N, h, w, 1) probability (non-recurrent run;
        the ConvLSTM model starts from a zero state)."""
        h, w = self.check_size(images.shape[1:3])
        feeds = {"image": np.ascontiguousarray(images, np.float32)}
        if self.recurrent:
            feeds.update({k: np.repeat(v, images.shape[0], 0) for k, v in self._zero_state(h, w).items()})
            feeds = self._settled(feeds)
        return self.session.run(["mask"], feeds)[0]

    def _settled(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``feeds`` with the state replaced by the state after ``settle_steps`` runs over the same image."""
        names = [i.name for i in self.state_inputs]
        for _ in range(self.settle_steps):
            outs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
            feeds = dict(feeds, **{name: outs[name[:-1] + "o"] for name in names})
        return feeds

    def step(self, frame: np.ndarray, bgr: bool = False) -> np.ndarray:
        """(H, W, 3) uint8 RGB (BGR, OpenCV's order, with ``bgr``) -> (H, W) float32 alpha in [0, 1] at the
        frame's size."""
        import cv2
        fh, fw = frame.shape[:2]
        h, w = self.input_size_for((fh, fw))
        small = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        if bgr:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        feeds = {"image": (small.astype(np.float32) * (1.0 / 255.0))[None]}
        if self.recurrent:
            fresh = self._state is None or self._state_size != (h, w)
            if fresh:
                self._state, self._state_size = self._zero_state(h, w), (h, w)
            feeds.update(self._state)
            if fresh:
                feeds = self._settled(feeds)
        outs = dict(zip(self.output_names, self.session.run(self.output_names, feeds)))
        if self.recurrent:
            self._state = {name: outs[name[:-1] + "o"] for name in self._state}
        return cv2.resize(outs["mask"][0, :, :, 0], (fw, fh), interpolation=cv2.INTER_LINEAR)
