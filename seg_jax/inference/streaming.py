"""The jitted streaming step: ``step(state, frame) -> (state, alpha)`` for every model.

One jitted function does the whole per-frame work on device: uint8 -> float, resize to the inference size,
the network (carrying the ConvLSTM (h, c) for the temporal model; the state is ``()`` for per-frame models),
sigmoid, and the edge-aware upsample of the alpha to the frame's resolution (fast guided filter guided by the
full-resolution frame). The state argument is donated, so the recurrent buffers are updated in place; a zero
state is always built fresh (:meth:`StreamingStep.init_state`), never shared.

Fast path (default, ``fast=True``): the 'mobilenet' and 'convlstm' models run on BatchNorm-folded weights
(:mod:`seg_jax.inference.fused`; the ConvLSTM cells unchanged), equal to the Flax model to ~1e-6 and faster at batch 1
on CPU (measured: results/MEASUREMENTS.md, 'streaming: fused path vs Flax model'). ``fast=False`` (or a
non-float32 model, or 'unet') runs ``model.apply``.

Compilation: the jitted functions are cached per (model, inference size, refinement, fast); jax compiles them
once per frame resolution. A step is dispatched as separately jitted pieces (preprocess, network, and the
guided upsample's three stages: fit at low resolution, column pass, row pass + combine): on CPU one jit over
the whole step is much slower (XLA's CPU fusion merged the antialiased downsample's gathers with the guided
filter's products and recomputed them per use; the ``optimization_barrier`` in ``ops.resize`` does not survive
on CPU), so the guided upsample's stages are jitted apart (measured: results/MEASUREMENTS.md, 'streaming:
separately jitted pieces'; ``seg_jax.bench`` e2e measures both forms, the one-jit form in
:mod:`seg_jax.bench.one_jit`); a frame of a new size recompiles only the cheap pre/post pieces.

    step = make_streaming_step("convlstm", variables, input_size=(160, 288))
    state = step.init_state(frames[0])       # settled on the first frame where the weights ask for it
    for frame in frames:                      # (H, W, 3) uint8 RGB
        state, alpha = step(state, frame)     # alpha: (H, W) float32 in [0, 1], on device
"""
from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.artifacts.settle import check_settle_steps
from seg_jax.inference.fused import fold_batchnorm, folded_to_device, fused_apply
from seg_jax.inference.plan import plan_for
from seg_jax.inference.sizes import DEFAULT_INPUT_SIZE, check_input_size
from seg_jax.models import get_spec
from seg_jax.models.build import build_model
from seg_jax.ops.guided_filter import (
    apply_coefficients,
    coefficients_to_width,
    fast_guided_upsample,
    guided_coefficients,
)
from seg_jax.ops.resize import resize, to_float
from seg_jax.ops.stabilise import Stabilise, initial_hold_state, stabilise

# Donation is a no-op (with a warning) on backends that cannot reuse the buffer; the result is the same.
warnings.filterwarnings("ignore", message="Some donated buffers were not usable")

State = Any  # () for per-frame models; a tuple of four (h, c) pairs for the ConvLSTM model


DEFAULT_GUIDED_RADIUS = 6  # inference pixels; see Refine


@dataclasses.dataclass(frozen=True)
class Refine:
    """How the low-resolution alpha is brought to the frame's resolution.

    Attributes:
      method: 'guided' (fast guided filter on the full-resolution frame) or 'bilinear'.
      radius: guided filter window radius, in inference-resolution pixels.
      eps: guided filter regulariser (for colours in [0, 1]).
      color: use the RGB frame as guide (True) or its luma (False).
      subsample: fit the guided filter's linear model at 1/subsample of the inference size (block means;
        He & Sun 2015). 2 fits on a quarter of the pixels, which makes the post stage markedly cheaper on CPU,
        with the same validation Dice to 1e-4, but on the test split the edges are a little less exact
        (boundary F) and less steady (flicker), so the default stays 1 (measured: results/MEASUREMENTS.md,
        'streaming: guided filter subsample').

    Defaults: eps 1e-3 and the colour guide were chosen on a proxy (a ground-truth mask shrunk to the inference
    size, softened, upsampled back; guided beat bilinear). The radius was then chosen with the trained U-Net
    MobileNet on the real validation split at full resolution (Segmenter, 256 budget): Dice rises from radius 1
    to a plateau around 4-8 and falls on people and DAVIS by 16; 6 sits in the middle of the plateau at a small
    cost over radius 1 on CPU (measured: results/MEASUREMENTS.md, 'streaming: guided filter eps, colour guide
    and radius').
    """
    method: str = "guided"
    radius: int = DEFAULT_GUIDED_RADIUS
    eps: float = 1e-3
    color: bool = True
    subsample: int = 1

    def __post_init__(self):
        if self.method not in ("guided", "bilinear"):
            raise ValueError(f"refine method must be 'guided' or 'bilinear', got {self.method!r}")
        if int(self.subsample) < 1:
            raise ValueError(f"guided filter subsample must be a positive integer, got {self.subsample!r}")


def initial_state(model_name: str, input_size: Sequence[int], dtype=jnp.float32) -> State:
    """A fresh zero state for one stream (batch 1) at ``input_size``; ``()`` for per-frame models."""
    h, w = input_size
    return get_spec(model_name).initial_state(1, int(h), int(w), dtype)


def preprocess(frame: jax.Array, input_size: Sequence[int]) -> tuple[jax.Array, jax.Array]:
    """(H, W, 3) uint8 -> (full-res float frame (H, W, 3), network input (1, h, w, 3) in [0, 1])."""
    full = to_float(frame)
    small = resize(full, tuple(input_size), antialias=True)
    return full, small[None]


def network(model: nn.Module, model_name: str, variables: Mapping[str, Any], state: State,
            x: jax.Array) -> tuple[State, jax.Array]:
    """(state, (1, h, w, 3)) -> (state, probabilities (h, w)) for any registered model."""
    if get_spec(model_name).temporal:
        state, logits = model.apply(variables, state, x, method="step")
    else:
        logits = model.apply(variables, x, train=False)
    return state, jax.nn.sigmoid(logits[0, ..., 0].astype(jnp.float32))


def fast_params(model: nn.Module, model_name: str, variables: Mapping[str, Any], dot_dtype: Any = "auto"):
    """BatchNorm-folded device weights for the fast network path, or None where it does not apply
    (U-Net, non-float32 compute). ``dot_dtype`` ('auto', 'float32', 'bfloat16'): the dtype the 1x1 kernels
    are stored in, which is the operand dtype of those products in :func:`network_fast` ('auto':
    bfloat16 on CPUs with native bfloat16 dots, see :mod:`seg_jax.inference.fused`)."""
    if not get_spec(model_name).foldable or jnp.dtype(getattr(model, "dtype", jnp.float32)) != jnp.float32:
        return None
    return folded_to_device(fold_batchnorm(variables), dot_dtype)


def network_fast(model: nn.Module, model_name: str, folded: Mapping[str, Any], state: State,
                 x: jax.Array) -> tuple[State, jax.Array]:
    """:func:`network` on BatchNorm-folded weights (:func:`fast_params`); same result to ~1e-6 with float32
    products (bfloat16 1x1 products where the weights store them so: probabilities within ~0.05)."""
    plan = plan_for(model_name, getattr(model, "gate_activation", "hard_sigmoid"),
                    bool(getattr(model, "residual_cells", False)))
    impl = getattr(model, "depthwise_impl", "auto")
    if plan.recurrent:
        state, logits = fused_apply(folded, x, plan=plan, depthwise_impl=impl, state=state)
    else:
        logits = fused_apply(folded, x, plan=plan, depthwise_impl=impl)
    return state, jax.nn.sigmoid(logits[0, ..., 0].astype(jnp.float32))


def postprocess(prob: jax.Array, small: jax.Array, full: jax.Array, refine: Refine) -> jax.Array:
    """Low-res probabilities (h, w) -> alpha (H, W) float32 in [0, 1] at the frame's resolution.

    ``full`` is the frame, uint8 (preferred: converted inside the last fused loop) or float in [0, 1]."""
    size = full.shape[:2]
    if refine.method == "bilinear" or tuple(prob.shape) == tuple(size):
        return jnp.clip(resize(prob, size, antialias=False), 0.0, 1.0)
    return fast_guided_upsample(prob, small[0], full, refine.radius, refine.eps, refine.color, refine.subsample)


def network_stage(fast: bool, hold: Stabilise = Stabilise()):
    """The network stage ``(model, name, weights, state, x) -> (state, prob)``; with the stabiliser on, the
    state is ``(network state, hold state)`` and the probabilities come out stabilised."""
    net = network_fast if fast else network
    if not hold.enabled:
        return net

    def net_and_hold(model, model_name, variables, state, x):
        net_state, hold_state = state
        net_state, prob = net(model, model_name, variables, net_state, x)
        hold_state, prob = stabilise(prob, x[0], hold_state, hold)
        return (net_state, hold_state), prob
    return net_and_hold


def _post_pieces(refine: Refine):
    """:func:`postprocess` as separately jitted stages (see the module docstring): (prob, small, frame) -> alpha."""
    whole = jax.jit(lambda prob, small, frame: postprocess(prob, small, frame, refine))
    if refine.method != "guided":
        return whole
    fit = jax.jit(lambda prob, small: guided_coefficients(prob, small[0], refine.radius, refine.eps, refine.color,
                                                          refine.subsample))
    widen = jax.jit(coefficients_to_width, static_argnums=1)
    apply = jax.jit(apply_coefficients)

    def post(prob: jax.Array, small: jax.Array, frame: jax.Array) -> jax.Array:
        if tuple(prob.shape) == tuple(frame.shape[:2]):
            return whole(prob, small, frame)
        return apply(widen(fit(prob, small), int(frame.shape[1])), frame)
    return post


@functools.lru_cache(maxsize=None)
def _settle_fn(model: nn.Module, model_name: str, fast: bool, steps: int):
    """jit((weights, network state, x (1, h, w, 3)) -> network state after ``steps`` passes over the same x)."""
    net = network_fast if fast else network

    def settle(variables, state, x):
        return jax.lax.fori_loop(0, steps, lambda _, s: net(model, model_name, variables, s, x)[0], state)
    return jax.jit(settle, donate_argnums=(1,))


@functools.lru_cache(maxsize=None)
def _pieces(model: nn.Module, model_name: str, input_size: tuple[int, int], refine: Refine, fast: bool = False,
            hold: Stabilise = Stabilise()):
    net_fn = network_stage(fast, hold)
    pre = jax.jit(lambda frame: preprocess(frame, input_size)[1])
    net = jax.jit(lambda variables, state, x: net_fn(model, model_name, variables, state, x), donate_argnums=(1,))
    return pre, net, _post_pieces(refine)


def clear_compiled() -> None:
    """Forget the cached step builders (their jitted functions and executables); see
    :mod:`seg_jax.inference.compiled_sizes`."""
    for cached in (_settle_fn, _pieces):
        cached.cache_clear()


class StreamingStep:
    """``step(state, frame) -> (state, alpha)`` with the variables bound; see the module docstring.

    Attributes:
      model_name: 'unet', 'mobilenet' or 'convlstm'.
      input_size: (h, w) the network runs at (multiples of 32).
      refine: the upsampling of the alpha (:class:`Refine`).
      stabilise: the motion-gated hold of the previous alpha (:class:`seg_jax.ops.stabilise.Stabilise`; off by
        default here, on in :class:`seg_jax.Segmenter`). When on, the state is ``(network state, hold state)``.
      fast: whether the BatchNorm-folded network runs (False where it does not apply).
      dot_dtype: operand dtype of the fast path's 1x1 products ('auto', 'float32', 'bfloat16'; see
        :func:`fast_params`); ignored when ``folded`` is given (its stored kernels decide).
      settle_steps: extra passes of a temporal network over the first frame of a stream (:meth:`init_state`
        with that frame), so cells that average over time start at their steady state and a single image gets
        the per-frame answer (the weights manifest's ``settle_steps``; 0 for per-frame models).
    """

    def __init__(self, model: nn.Module, model_name: str, variables: Mapping[str, Any],
                 input_size: Sequence[int] = DEFAULT_INPUT_SIZE, refine: Refine = Refine(),
                 state_dtype=jnp.float32, fast: bool = True, folded: Optional[Mapping[str, Any]] = None,
                 dot_dtype: Any = "auto", stabilise: Stabilise = Stabilise(), settle_steps: int = 0):
        settle_steps = check_settle_steps(settle_steps, "StreamingStep(settle_steps=...)")
        h, w = check_input_size(input_size)
        self.model, self.model_name, self.variables = model, model_name, variables
        self.input_size = (h, w)
        self.refine = refine
        self.stabilise = stabilise
        self.state_dtype = state_dtype
        # ``folded``: precomputed fast_params(...) (a Segmenter folds once for all its inference sizes)
        self.params = ((folded if folded is not None else fast_params(model, model_name, variables, dot_dtype))
                       if fast else None)
        self.fast = self.params is not None
        if not self.fast:
            self.params = variables
        self._pre, self._net, self._post = _pieces(model, model_name, self.input_size, refine, self.fast, stabilise)
        self.settle_steps = settle_steps if get_spec(model_name).temporal else 0

    @property
    def temporal(self) -> bool:
        return get_spec(self.model_name).temporal

    def init_state(self, frame=None) -> State:
        """A fresh state (new buffers each call, safe to donate): zeros, then, given the stream's first
        ``frame`` (H, W, 3) uint8 and ``settle_steps`` > 0, the network state after that many passes over it
        (the frame's own step follows as usual). The stabiliser's hold state always starts empty."""
        state = initial_state(self.model_name, self.input_size, self.state_dtype)
        if self.settle_steps and frame is not None:
            settle = _settle_fn(self.model, self.model_name, self.fast, self.settle_steps)
            state = settle(self.params, state, self._pre(jnp.asarray(frame)))
        return (state, initial_hold_state(self.input_size)) if self.stabilise.enabled else state

    def __call__(self, state: State, frame) -> tuple[State, jax.Array]:
        """One step (separately jitted pieces, all on device). ``frame`` (H, W, 3) uint8 RGB; ``state`` is donated
        (do not reuse it)."""
        state, alpha, _ = self.step_keeping_prob(state, frame)
        return state, alpha

    def step_keeping_prob(self, state: State, frame) -> tuple[State, jax.Array, jax.Array]:
        """Like ``__call__``, also returning the low-resolution probabilities (h, w) before the upsample (after
        the stabiliser), which :meth:`refine_held` can bring onto later frames without the network."""
        frame = jnp.asarray(frame)
        small = self._pre(frame)
        state, prob = self._net(self.params, state, small)
        return state, self._post(prob, small, frame), prob

    def refine_held(self, prob: jax.Array, frame) -> jax.Array:
        """Earlier low-resolution probabilities (h, w) -> alpha (H, W) on a new ``frame``: the guided filter
        fitted on this frame moves the held alpha's edges onto its edges (within the filter's radius). The state
        is not touched, so the stabiliser compares the next network frame with the last one the network saw."""
        frame = jnp.asarray(frame)
        return self._post(prob, self._pre(frame), frame)


    def warmup(self, frame_hw: Sequence[int]) -> None:
        """Compile for frames of size ``frame_hw`` (H, W) before the first real frame."""
        frame = jnp.zeros((int(frame_hw[0]), int(frame_hw[1]), 3), jnp.uint8)
        _, alpha = self(self.init_state(), frame)
        alpha.block_until_ready()


def make_streaming_step(model_name: str, variables: Mapping[str, Any], *, model: Optional[nn.Module] = None,
                        model_config: Optional[Mapping[str, Any]] = None,
                        input_size: Sequence[int] = DEFAULT_INPUT_SIZE, refine: Refine = Refine(),
                        fast: bool = True, dot_dtype: Any = "auto",
                        stabilise: Stabilise = Stabilise(), settle_steps: int = 0) -> StreamingStep:
    """Build the streaming step for ``model_name`` with ``variables`` ({"params", "batch_stats"}).

    ``model`` (a Flax module) or ``model_config`` (a ``config.model`` dict, e.g. a weights manifest's
    ``"model"``) choose the module; default: the registry's module with default options.
    """
    if model is None:
        config = dict(model_config or {"name": model_name})
        config["name"] = model_name
        model = build_model(config)
    return StreamingStep(model, model_name, variables, input_size, refine, fast=fast, dot_dtype=dot_dtype,
                         stabilise=stabilise, settle_steps=settle_steps)


__all__ = ["DEFAULT_INPUT_SIZE", "Refine", "Stabilise", "StreamingStep", "fast_params", "initial_state",
           "make_streaming_step", "network", "network_fast", "network_stage", "postprocess", "preprocess"]
