"""Inference with BatchNorm folded into the convolutions (U-Net MobileNet, and the ConvLSTM model's step).

``fold_batchnorm(variables)`` turns the Flax ``{"params", "batch_stats"}`` of a ``UNetMobileNet`` (or the shared
encoder/decoder of ``UNetMobileNetConvLSTM``) into a flat ``{layer_path: {"kernel", "bias"}}`` dict where every
conv that is followed by a BatchNorm carries ``kernel * s`` and ``(bias - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. ``fused_apply(folded, images)`` runs the same network as
``UNetMobileNet.apply(variables, images, train=False)`` on those weights (equal to ~1e-5 in float32), with
1x1 convolutions written as matrix products and the 3-channel stem conv as shift-and-add on CPU.

Why: on CPU every BatchNorm costs an extra pass over the activation (and extra live buffers); folded weights
also export cleanly (ONNX rejected the BatchNorm'd graph, see docs/gotchas.md). The network is the plan of
:mod:`seg_jax.inference.plan` (which the ONNX exporter walks too), computed by :class:`JaxOps`;
``tests/test_streaming_fused.py`` pins the equality with the Flax model.

Matrix products in bfloat16 (``dot_dtype``): the 1x1 convolutions (over half the time on CPU) can take
bfloat16 operands with float32 accumulation while every other op stays float32. On a CPU with native bfloat16
dot instructions (AVX512-BF16 / AMX) that is faster, with the real validation Dice unchanged to 1e-4; a fully
bfloat16 network is slower there (elementwise bf16 is emulated) (measured: results/MEASUREMENTS.md,
'fused: bfloat16 1x1 products'). :func:`default_dot_dtype` picks bfloat16 only on such CPUs.

For ``UNetMobileNetConvLSTM`` the folded dict also carries the four cells' parameters unchanged
(``decoder/convlstm_<level>``) and ``fused_apply(..., plan=plan_for("convlstm", ...), state=state)`` runs one
streaming step (the cells are the model's own ``ConvLSTMCell``). The streaming path
(:mod:`seg_jax.inference.streaming`) uses this by default.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.bench.cpuinfo import cpu_flags
from seg_jax.inference.plan import Plan, Step, mobilenet_plan, walk
from seg_jax.models.convlstm import ConvLSTMCell
from seg_jax.models.layers import (
    depthwise_conv,
    hard_sigmoid,
    hard_swish,
    resolve_depthwise_impl,
    same_padding,
    upsample2x_bilinear,
)

Folded = dict[str, dict[str, np.ndarray]]

ACTIVATION_FNS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": jax.nn.relu, "hard_swish": hard_swish,
                                                     "hard_sigmoid": hard_sigmoid, "none": lambda x: x}


def fold_conv_bn(conv: Mapping[str, Any], bn_params: Mapping[str, Any], bn_stats: Mapping[str, Any],
                 eps: float) -> dict[str, np.ndarray]:
    """A conv's {"kernel" (..., O), "bias" (O,) optional} with the BatchNorm after it merged in (float64 maths,
    float32 out): kernel * s and (bias - mean) * s + beta, s = gamma / sqrt(var + eps)."""
    kernel = np.asarray(conv["kernel"], np.float64)
    bias = np.asarray(conv["bias"], np.float64) if "bias" in conv else np.zeros(kernel.shape[-1])
    s = np.asarray(bn_params["scale"], np.float64) / np.sqrt(np.asarray(bn_stats["var"], np.float64) + eps)
    return {"kernel": (kernel * s).astype(np.float32),
            "bias": ((bias - np.asarray(bn_stats["mean"], np.float64)) * s
                     + np.asarray(bn_params["bias"], np.float64)).astype(np.float32)}


def _plain(conv: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out = {"kernel": np.asarray(conv["kernel"], np.float32)}
    out["bias"] = (np.asarray(conv["bias"], np.float32) if "bias" in conv
                   else np.zeros(out["kernel"].shape[-1], np.float32))
    return out


def fold_batchnorm(variables: Mapping[str, Any]) -> Folded:
    """Fold every BatchNorm of a U-Net MobileNet into the conv before it (host-side, float64 maths).

    Accepts the variables of ``UNetMobileNet`` or ``UNetMobileNetConvLSTM`` and reads the weights each step of
    its :func:`seg_jax.inference.plan.mobilenet_plan` names (the ConvLSTM cells' parameters are copied as they
    are, under ``decoder/convlstm_<level>``). Returns ``{"encoder/conv": {"kernel", "bias"}, ...}``.
    """
    params, stats = variables["params"], variables["batch_stats"]
    plan = mobilenet_plan(recurrent="convlstm_0" in params["decoder"])
    out: Folded = {}
    for step in plan.steps:
        if not step.param:
            continue
        *path, leaf = step.param.split("/")
        p, s = params, stats
        for key in path:
            p, s = p[key], s.get(key, {})
        if step.op == "convlstm":
            out[step.param] = {k: np.asarray(v, np.float32) for k, v in p[leaf].items()}
        elif step.bn:
            out[step.param] = fold_conv_bn(p[leaf], p[step.bn], s[step.bn], step.eps)
        else:
            out[step.param] = _plain(p[leaf])
    return out


def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU has bfloat16 dot instructions (x86 AVX512-BF16 or AMX-BF16; Linux only)."""
    flags = cpu_flags()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=None)
def default_dot_dtype(backend: str | None = None) -> str:
    """'bfloat16' on a CPU backend whose CPU multiplies bfloat16 natively, else 'float32' (see module doc)."""
    backend = backend or jax.default_backend()
    return "bfloat16" if backend == "cpu" and cpu_has_native_bf16() else "float32"


def resolve_dot_dtype(dot_dtype: Any = None) -> Any:
    """None or 'auto' -> :func:`default_dot_dtype`; otherwise a float32/bfloat16 dtype (one-line error if not)."""
    if dot_dtype is None or (isinstance(dot_dtype, str) and dot_dtype == "auto"):
        dot_dtype = default_dot_dtype()
    try:
        dtype = jnp.dtype(dot_dtype)
    except TypeError:
        dtype = None
    if dtype not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16)):
        raise ValueError(f"dot dtype must be 'auto', 'float32' or 'bfloat16', got {dot_dtype!r}")
    return dtype


def _pointwise(x: jax.Array, w: Mapping[str, jax.Array], act: str, dot_dtype: Any = None) -> jax.Array:
    """1x1 conv as a matrix product over the channel axis, + bias + activation.

    ``dot_dtype``: operand dtype of the product (None: x's); it accumulates and returns in x's dtype."""
    operand = x.dtype if dot_dtype is None else dot_dtype
    k = w["kernel"].reshape(w["kernel"].shape[-2:]).astype(operand)
    y = jax.lax.dot_general(x.astype(operand), k, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=x.dtype)
    return ACTIVATION_FNS[act](y + w["bias"].astype(x.dtype))


class JaxOps:
    """The JAX backend of :func:`seg_jax.inference.plan.walk`: one method per plan op, on folded weights.

    Args:
      folded: the folded weights (:func:`fold_batchnorm`, :func:`folded_to_device`).
      impl: depthwise implementation, 'shift_add' or 'grouped' (the stem conv follows it).
      dtype: compute dtype of every op.
      dot_dtype: operand dtype of the 1x1 products (accumulated in ``dtype``).
      state: the ConvLSTM model's recurrent state (a tuple of (h, c) per level), or None; :attr:`new_state`
        collects the cells' new (h, c).
    """

    def __init__(self, folded: Mapping[str, Mapping[str, jax.Array]], impl: str, dtype: Any, dot_dtype: Any,
                 state: Any = None):
        self.w, self.impl, self.dtype, self.dot_dtype = folded, impl, dtype, dot_dtype
        self.state = state
        self.new_state: dict[int, Any] = {}

    def rescale(self, step: Step, x: jax.Array) -> jax.Array:
        return x.astype(self.dtype) * 2.0 - 1.0

    def conv(self, step: Step, x: jax.Array) -> jax.Array:
        """The dense conv (the stem): shift-and-add where the depthwise impl is (see :func:`stem_conv`)."""
        w = self.w[step.param]
        y = stem_conv(x, w["kernel"].astype(self.dtype), self.impl, step.stride)
        return ACTIVATION_FNS[step.act](y + w["bias"].astype(self.dtype))

    def pointwise(self, step: Step, x: jax.Array) -> jax.Array:
        return _pointwise(x, self.w[step.param], step.act, self.dot_dtype)

    def depthwise(self, step: Step, x: jax.Array) -> jax.Array:
        w = self.w[step.param]
        y = depthwise_conv(x, w["kernel"], step.stride, self.impl)
        return ACTIVATION_FNS[step.act](y + w["bias"].astype(x.dtype))

    def mean(self, step: Step, x: jax.Array) -> jax.Array:
        return jnp.mean(x, axis=(1, 2), keepdims=True)

    def mul(self, step: Step, a: jax.Array, b: jax.Array) -> jax.Array:
        return a * b

    def add(self, step: Step, a: jax.Array, b: jax.Array) -> jax.Array:
        return ACTIVATION_FNS[step.act](a + b)

    def upsample(self, step: Step, x: jax.Array) -> jax.Array:
        return upsample2x_bilinear(x)

    def convlstm(self, step: Step, x: jax.Array) -> jax.Array:
        """The model's own ``ConvLSTMCell`` on the state of level ``step.level``."""
        w = self.w[step.param]
        cell = ConvLSTMCell(w["bias"].shape[-1] // 4, gate_activation=step.act, dtype=self.dtype)
        self.new_state[step.level], h = cell.apply({"params": w}, self.state[step.level], x)
        return h


def fused_apply(folded: Mapping[str, Mapping[str, jax.Array]], images: jax.Array, *, plan: Plan | None = None,
                depthwise_impl: str = "auto", dtype: Any = jnp.float32, state: Any = None, dot_dtype: Any = None,
                ops: type[JaxOps] = JaxOps):
    """U-Net MobileNet inference on folded weights: (N, H, W, 3) in [0, 1] -> logits (N, H, W, 1) float32.

    ``plan``: the network (:mod:`seg_jax.inference.plan`; None: ``mobilenet_plan(recurrent=state is not None)``
    with the default options). A recurrent plan runs one step of ``UNetMobileNetConvLSTM.step`` from ``state``
    (a tuple of four (h, c)) and returns ``(state, logits)``.
    ``dot_dtype``: operand dtype of the 1x1 convolutions, accumulated in ``dtype`` like every other op
    ('auto': :func:`default_dot_dtype`; None: the dtype the 1x1 kernels are stored in when that is bfloat16
    (:func:`folded_to_device` with ``dot_dtype``), else ``dtype``). ``ops``: the backend class (a
    :class:`JaxOps`; the benchmark's ablation passes variants of it).
    """
    plan = plan or mobilenet_plan(recurrent=state is not None)
    if plan.recurrent != (state is not None):
        raise ValueError("a recurrent plan needs a state and a per-frame plan takes none")
    if dot_dtype is None:
        stored = stored_dot_dtype(folded)
        dot_dtype = stored if stored == jnp.dtype(jnp.bfloat16) else jnp.dtype(dtype)
    else:
        dot_dtype = resolve_dot_dtype(dot_dtype)
    backend = ops(folded, resolve_depthwise_impl(depthwise_impl), dtype, dot_dtype, state)
    logits = walk(plan, backend, images).astype(jnp.float32)
    if not plan.recurrent:
        return logits
    return tuple(backend.new_state[level] for level in range(len(state))), logits


def stem_conv(x: jax.Array, kernel: jax.Array, impl: str, stride: int = 2) -> jax.Array:
    """The encoder's first conv (3x3, stride 2, TF 'SAME', 3 -> 16 channels), without bias.

    On CPU ('shift_add') it is 27 broadcast multiply-adds in one loop fusion (faster than XLA's convolution
    for 3 input channels; measured: results/MEASUREMENTS.md, 'fused: stem conv as shift-and-add'); elsewhere
    the plain convolution.
    """
    if impl != "shift_add":
        return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    n, h, w, c = x.shape
    k, s = kernel.shape[0], stride
    (pt, pb), (pl, pr) = same_padding(h, k, s), same_padding(w, k, s)
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // s), -(-w // s)
    out = None
    for i in range(k):
        for j in range(k):
            win = jax.lax.slice(xp, (0, i, j, 0), (n, i + (oh - 1) * s + 1, j + (ow - 1) * s + 1, c), (1, s, s, 1))
            for ci in range(c):
                term = win[..., ci:ci + 1] * kernel[i, j, ci]
                out = term if out is None else out + term
    return out


def stored_dot_dtype(folded: Mapping[str, Mapping[str, Any]]) -> Any:
    """The dtype the folded 1x1 kernels are stored in (the ``dot_dtype`` given to :func:`folded_to_device`)."""
    return jnp.dtype(folded["decoder/head"]["kernel"].dtype)


def folded_to_device(folded: Folded, dot_dtype: Any = jnp.float32) -> dict[str, dict[str, jax.Array]]:
    """Folded weights as device arrays; the 1x1 kernels stored in ``dot_dtype`` ('auto' allowed) so a
    bfloat16 product does not convert its weights on every call."""
    dot_dtype = resolve_dot_dtype(dot_dtype)

    def put(path, value):
        is_1x1_kernel = path[-1].key == "kernel" and value.ndim == 4 and value.shape[:2] == (1, 1)
        return jnp.asarray(value, dot_dtype if is_1x1_kernel else None)
    return jax.tree_util.tree_map_with_path(put, folded)
