"""The jitted streaming step: ``step(state, frame) -> (state, alpha)`` for every model.

One jitted function does the whole per-frame work on device: uint8 -> float, resize to the inference size,
the network (carrying the ConvLSTM (h, c) for the temporal model; the state is ``()`` for per-frame models),
sigmoid, and the edge-aware upsample of the alpha to the frame's resolution (fast guided filter guided by the
full-resolution frame). The state argument is donated, so the recurrent buffers are updated in place; a zero
state is always built fresh (:meth:`StreamingStep.init_state`), never shared.

Compilation: the jitted function is cached per (model, inference size, refinement); jax compiles it once per
frame resolution. :meth:`StreamingStep.split_step` runs the same computation as three smaller jitted pieces
(preprocess, network, postprocess) so that a stream of photos of many sizes recompiles only the cheap pieces.

    step = make_streaming_step("convlstm", variables, input_size=(160, 288))
    state = step.init_state()
    for frame in frames:                      # (H, W, 3) uint8 RGB
        state, alpha = step(state, frame)     # alpha: (H, W) float32 in [0, 1], on device
"""
from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import flax.linen as nn

from seg_jax.models import is_temporal
from seg_jax.ops.guided_filter import fast_guided_upsample
from seg_jax.ops.resize import resize, to_float

# Donation is a no-op (with a warning) on backends that cannot reuse the buffer; the result is the same.
warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

DEFAULT_INPUT_SIZE = (256, 256)
SIZE_MULTIPLE = 32  # MobileNet models need multiples of 32 (the U-Net 16)

State = Any  # () for per-frame models; a tuple of four (h, c) pairs for the ConvLSTM model


@dataclasses.dataclass(frozen=True)
class Refine:
    """How the low-resolution alpha is brought to the frame's resolution.

    Attributes:
      method: 'guided' (fast guided filter on the full-resolution frame) or 'bilinear'.
      radius: guided filter window radius, in inference-resolution pixels.
      eps: guided filter regulariser (for colours in [0, 1]).
      color: use the RGB frame as guide (True) or its luma (False).

    Defaults (radius 1, eps 1e-3, colour) were chosen on real data (runs/live/tune_gf.py): a ground-truth mask
    shrunk to the inference size and softened (sigma 1.5, like a network's output), upsampled back; Dice at 0.5
    vs the full-resolution truth. Portraits 0.9968 bilinear -> 0.9974 guided; DAVIS (small people)
    0.9510 -> 0.9524. Larger radius or eps smooth small people away (DAVIS 0.9499 at r1/1e-2, 0.9465 at 1e-1).
    """
    method: str = "guided"
    radius: int = 1
    eps: float = 1e-3
    color: bool = True

    def __post_init__(self):
        if self.method not in ("guided", "bilinear"):
            raise ValueError(f"refine method must be 'guided' or 'bilinear', got {self.method!r}")


def choose_input_size(frame_hw: Sequence[int], base_hw: Sequence[int] = DEFAULT_INPUT_SIZE, *,
                      keep_aspect: bool = True, multiple: int = SIZE_MULTIPLE,
                      tolerance: float = 0.03) -> tuple[int, int]:
    """Inference size for a frame: ``base_hw`` itself, or the largest size with (about) the frame's aspect.

    With ``keep_aspect``, candidates are sizes (multiples of ``multiple``) with at most the pixel count of
    ``base_hw``; among those whose aspect ratio is within ``tolerance`` (in log) of the frame's and that keep
    at least half the pixels, the largest wins; else the one with the least aspect error + 0.5 log(pixel loss). 256x256 base: 16:9 -> 160x288, 4:3 -> 192x256, 3:4 -> 256x192,
    square -> 256x256.
    """
    bh, bw = int(base_hw[0]), int(base_hw[1])
    if not keep_aspect:
        return bh, bw
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    target = math.log(fw / fh)
    if abs(target - math.log(bw / bh)) <= tolerance:
        return bh, bw
    budget = bh * bw
    best, best_key = (bh, bw), None
    limit = 4 * max(bh, bw) // multiple
    for i in range(1, limit + 1):
        for j in range(1, limit + 1):
            h, w = i * multiple, j * multiple
            if h * w > budget:
                continue
            err = abs(math.log(w / h) - target)
            if err <= tolerance and 2 * h * w >= budget:
                key = (0, 0.0, -h * w)        # the frame's aspect: the largest such size
            else:                              # else trade aspect error against lost pixels
                key = (1, round(err + 0.5 * math.log(budget / (h * w)), 9), -h * w)
            if best_key is None or key < best_key:
                best, best_key = (h, w), key
    return best


def initial_state(model_name: str, input_size: Sequence[int], dtype=jnp.float32) -> State:
    """A fresh zero state for one stream (batch 1) at ``input_size``; ``()`` for per-frame models."""
    if not is_temporal(model_name):
        return ()
    from seg_jax.models import UNetMobileNetConvLSTM
    h, w = input_size
    return UNetMobileNetConvLSTM.initial_state(1, int(h), int(w), dtype)


def preprocess(frame: jax.Array, input_size: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """(H, W, 3) uint8 -> (full-res float frame (H, W, 3), network input (1, h, w, 3) in [0, 1])."""
    full = to_float(frame)
    small = resize(full, tuple(input_size), antialias=True)
    return full, small[None]


def network(model: nn.Module, model_name: str, variables: Mapping[str, Any], state: State,
            x: jax.Array) -> tuple[State, jax.Array]:
    """(state, (1, h, w, 3)) -> (state, probabilities (h, w)) for any registered model."""
    if is_temporal(model_name):
        state, logits = model.apply(variables, state, x, method="step")
    else:
        logits = model.apply(variables, x, train=False)
    return state, jax.nn.sigmoid(logits[0, ..., 0].astype(jnp.float32))


def postprocess(prob: jax.Array, small: jax.Array, full: jax.Array, refine: Refine) -> jax.Array:
    """Low-res probabilities (h, w) -> alpha (H, W) float32 in [0, 1] at the frame's resolution."""
    size = full.shape[:2]
    if refine.method == "bilinear" or tuple(prob.shape) == tuple(size):
        return jnp.clip(resize(prob, size, antialias=False), 0.0, 1.0)
    return fast_guided_upsample(prob, small[0], full, refine.radius, refine.eps, refine.color)


@functools.lru_cache(maxsize=None)
def _fused(model: nn.Module, model_name: str, input_size: tuple[int, int], refine: Refine):
    def step(variables, state, frame):
        full, small = preprocess(frame, input_size)
        state, prob = network(model, model_name, variables, state, small)
        return state, postprocess(prob, small, full, refine)
    return jax.jit(step, donate_argnums=(1,))


@functools.lru_cache(maxsize=None)
def _pieces(model: nn.Module, model_name: str, input_size: tuple[int, int], refine: Refine):
    pre = jax.jit(lambda frame: preprocess(frame, input_size))
    net = jax.jit(lambda variables, state, x: network(model, model_name, variables, state, x), donate_argnums=(1,))
    post = jax.jit(lambda prob, small, full: postprocess(prob, small, full, refine))
    return pre, net, post


class StreamingStep:
    """``step(state, frame) -> (state, alpha)`` with the variables bound; see the module docstring.

    Attributes:
      model_name: 'unet', 'mobilenet' or 'convlstm'.
      input_size: (h, w) the network runs at (multiples of 32).
      refine: the upsampling of the alpha (:class:`Refine`).
    """

    def __init__(self, model: nn.Module, model_name: str, variables: Mapping[str, Any],
                 input_size: Sequence[int] = DEFAULT_INPUT_SIZE, refine: Refine = Refine(),
                 state_dtype=jnp.float32):
        h, w = int(input_size[0]), int(input_size[1])
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE or h <= 0 or w <= 0:
            raise ValueError(f"input size must be positive multiples of {SIZE_MULTIPLE}, got {h}x{w}")
        self.model, self.model_name, self.variables = model, model_name, variables
        self.input_size = (h, w)
        self.refine = refine
        self.state_dtype = state_dtype
        self._fn = _fused(model, model_name, self.input_size, refine)

    @property
    def temporal(self) -> bool:
        return is_temporal(self.model_name)

    def init_state(self) -> State:
        """A fresh zero state (new buffers each call, safe to donate)."""
        return initial_state(self.model_name, self.input_size, self.state_dtype)

    def __call__(self, state: State, frame) -> tuple[State, jax.Array]:
        """One fused, jitted step. ``frame`` (H, W, 3) uint8 RGB; ``state`` is donated (do not reuse it)."""
        return self._fn(self.variables, state, frame)

    def split_step(self, state: State, frame) -> tuple[State, jax.Array]:
        """Same result as ``__call__`` but as three jitted pieces (cheap recompiles for new frame sizes)."""
        pre, net, post = _pieces(self.model, self.model_name, self.input_size, self.refine)
        full, small = pre(frame)
        state, prob = net(self.variables, state, small)
        return state, post(prob, small, full)

    def warmup(self, frame_hw: Sequence[int]) -> None:
        """Compile for frames of size ``frame_hw`` (H, W) before the first real frame."""
        frame = jnp.zeros((int(frame_hw[0]), int(frame_hw[1]), 3), jnp.uint8)
        _, alpha = self(self.init_state(), frame)
        alpha.block_until_ready()


def make_streaming_step(model_name: str, variables: Mapping[str, Any], *, model: Optional[nn.Module] = None,
                        model_config: Optional[Mapping[str, Any]] = None,
                        input_size: Sequence[int] = DEFAULT_INPUT_SIZE, refine: Refine = Refine()) -> StreamingStep:
    """Build the streaming step for ``model_name`` with ``variables`` ({"params", "batch_stats"}).

    ``model`` (a Flax module) or ``model_config`` (a ``config.model`` dict, e.g. a weights manifest's
    ``"model"``) choose the module; default: the registry's module with default options.
    """
    if model is None:
        from seg_jax.model_io import build_model
        config = dict(model_config or {"name": model_name})
        config["name"] = model_name
        model = build_model(config)
    return StreamingStep(model, model_name, variables, input_size, refine)


__all__ = ["DEFAULT_INPUT_SIZE", "Refine", "StreamingStep", "choose_input_size", "initial_state",
           "make_streaming_step", "network", "postprocess", "preprocess"]
