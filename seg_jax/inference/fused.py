"""Inference with BatchNorm folded into the convolutions (U-Net MobileNet, and the ConvLSTM model's step).

``fold_batchnorm(variables)`` turns the Flax ``{"params", "batch_stats"}`` of a ``UNetMobileNet`` (or the shared
encoder/decoder of ``UNetMobileNetConvLSTM``) into a flat ``{layer_path: {"kernel", "bias"}}`` dict where every
conv that is followed by a BatchNorm carries ``kernel * s`` and ``(bias - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. ``fused_apply(folded, images)`` runs the same network as
``UNetMobileNet.apply(variables, images, train=False)`` on those weights (equal to ~1e-5 in float32), with
1x1 convolutions written as matrix products, the 3-channel stem conv as shift-and-add on CPU, and the 1x1
head run before the last 2x upsample (they commute), which upsamples 1 channel instead of 16.

Why: on CPU every BatchNorm costs an extra pass over the activation (and extra live buffers); folded weights
also export cleanly (ONNX rejected the BatchNorm'd graph, see docs/gotchas.md). The layer layout below mirrors
``seg_jax.models.mobilenet_v3`` / ``unet_mobilenet``; ``tests/test_streaming_fused.py`` pins the equality.

Matrix products in bfloat16 (``dot_dtype``): the 1x1 convolutions (over half the time on CPU) can take
bfloat16 operands with float32 accumulation while every other op stays float32. On a CPU with native bfloat16
dot instructions (AVX512-BF16 / AMX) that is faster, with the real validation Dice unchanged to 1e-4; a fully
bfloat16 network is slower there (elementwise bf16 is emulated) (measured: results/MEASUREMENTS.md,
'fused: bfloat16 1x1 products'). :func:`default_dot_dtype` picks bfloat16 only on such CPUs.

For ``UNetMobileNetConvLSTM`` the folded dict also carries the four cells' parameters unchanged
(``decoder/convlstm_<level>``) and ``fused_apply(..., state=state)`` runs one streaming step (the cells are the
model's own ``ConvLSTMCell``). The streaming path (:mod:`seg_jax.inference.streaming`) uses this by default.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.bench.cpuinfo import cpu_flags
from seg_jax.models.layers import (
    KERAS_BN_EPSILON,
    depthwise_conv,
    hard_sigmoid,
    hard_swish,
    resolve_depthwise_impl,
    same_padding,
    upsample2x_bilinear,
)
from seg_jax.models.mobilenet_v3 import LARGE_BLOCKS, MOBILENET_BN_EPSILON
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS

Folded = dict[str, dict[str, np.ndarray]]

_ACT: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": jax.nn.relu, "hard_swish": hard_swish,
                                                     "none": lambda x: x}


def _fold(conv: Mapping[str, Any], bn_params: Mapping[str, Any], bn_stats: Mapping[str, Any],
          eps: float) -> dict[str, np.ndarray]:
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

    Accepts the variables of ``UNetMobileNet`` or ``UNetMobileNetConvLSTM`` (the ConvLSTM cells' parameters
    are copied as they are, under ``decoder/convlstm_<level>``). Returns ``{"encoder/conv": {"kernel", "bias"}, ...}``.
    """
    params, stats = variables["params"], variables["batch_stats"]
    enc_p, enc_s = params["encoder"], stats["encoder"]
    eps = MOBILENET_BN_EPSILON
    out: Folded = {"encoder/conv": _fold(enc_p["conv"], enc_p["conv_BatchNormalization"],
                                         enc_s["conv_BatchNormalization"], eps)}
    for block_id in range(13):
        name = "expanded_conv" if block_id == 0 else f"expanded_conv_{block_id}"
        bp, bs = enc_p[name], enc_s[name]
        for layer in ("expand", "depthwise", "project"):
            if layer in bp:
                out[f"encoder/{name}/{layer}"] = _fold(bp[layer], bp[f"{layer}_BatchNormalization"],
                                                        bs[f"{layer}_BatchNormalization"], eps)
        for layer in ("squeeze_excite_Conv", "squeeze_excite_Conv_1"):
            if layer in bp:
                out[f"encoder/{name}/{layer}"] = _plain(bp[layer])
    dec_p, dec_s = params["decoder"], stats["decoder"]
    for level in range(len(DECODER_WIDTHS)):
        bp, bs = dec_p[f"bottleneck_{level}"], dec_s[f"bottleneck_{level}"]
        for layer in ("depthwise_0", "pointwise_0", "depthwise_1", "pointwise_1", "shortcut"):
            bn = "shortcut_bn" if layer == "shortcut" else f"{layer}_bn"
            out[f"decoder/bottleneck_{level}/{layer}"] = _fold(bp[layer], bp[bn], bs[bn], KERAS_BN_EPSILON)
    out["decoder/head"] = _plain(dec_p["head"])
    for level in range(len(DECODER_WIDTHS)):
        cell = dec_p.get(f"convlstm_{level}")
        if cell is not None:
            out[f"decoder/convlstm_{level}"] = {k: np.asarray(v, np.float32) for k, v in cell.items()}
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


def _pointwise(x: jax.Array, w: Mapping[str, jax.Array], act: str, as_dot: bool = True,
               dot_dtype: Any = None) -> jax.Array:
    """1x1 conv as a matrix product over the channel axis (or a convolution), + bias + activation.

    ``dot_dtype``: operand dtype of the product (None: x's); it accumulates and returns in x's dtype."""
    operand = x.dtype if dot_dtype is None else dot_dtype
    if as_dot:
        k = w["kernel"].reshape(w["kernel"].shape[-2:]).astype(operand)
        y = jax.lax.dot_general(x.astype(operand), k, (((x.ndim - 1,), (0,)), ((), ())),
                                preferred_element_type=x.dtype)
    else:
        y = jax.lax.conv_general_dilated(x.astype(operand), w["kernel"].astype(operand), (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"), preferred_element_type=x.dtype)
    return _ACT[act](y + w["bias"].astype(x.dtype))


def _depthwise(x: jax.Array, w: Mapping[str, jax.Array], stride: int, act: str, impl: str) -> jax.Array:
    y = depthwise_conv(x, w["kernel"], stride, impl)
    return _ACT[act](y + w["bias"].astype(x.dtype))


def fused_apply(folded: Mapping[str, Mapping[str, jax.Array]], images: jax.Array, *,
                depthwise_impl: str = "auto", dtype: Any = jnp.float32, pointwise_as_dot: bool = True,
                stem_shift_add: bool = True, head_before_upsample: bool = True, state: Any = None,
                gate_activation: str = "hard_sigmoid", dot_dtype: Any = None, residual_cells: bool = False):
    """``UNetMobileNet`` inference on folded weights: (N, H, W, 3) in [0, 1] -> logits (N, H, W, 1) float32.

    With ``state`` (the ConvLSTM model's recurrent state, a tuple of four (h, c)): one step of
    ``UNetMobileNetConvLSTM.step``, returning ``(state, logits)``; ``gate_activation`` and ``residual_cells`` must
    match the model's.

    The keyword switches exist for the benchmark's ablation (each was measured; defaults are the fastest on
    CPU): ``pointwise_as_dot`` (1x1 convs as dot vs convolution), ``stem_shift_add`` (first conv as
    shift-and-add where the depthwise impl is shift-and-add), ``head_before_upsample``.
    ``dot_dtype``: operand dtype of the 1x1 convolutions, accumulated in ``dtype`` like every other op
    ('auto': :func:`default_dot_dtype`; None: the dtype the 1x1 kernels are stored in when that is bfloat16
    (:func:`folded_to_device` with ``dot_dtype``), else ``dtype``).
    """
    impl = resolve_depthwise_impl(depthwise_impl)
    f = folded
    if dot_dtype is None:
        stored = stored_dot_dtype(f)
        dot_dtype = stored if stored == jnp.dtype(jnp.bfloat16) else jnp.dtype(dtype)
    else:
        dot_dtype = resolve_dot_dtype(dot_dtype)
    _pw = functools.partial(_pointwise, as_dot=pointwise_as_dot, dot_dtype=dot_dtype)
    x = images.astype(dtype) * 2.0 - 1.0
    x = hard_swish(stem_conv(x, f["encoder/conv"]["kernel"].astype(dtype), impl if stem_shift_add else "grouped")
                   + f["encoder/conv"]["bias"].astype(dtype))
    taps = {}
    for block_id, spec in enumerate(LARGE_BLOCKS[:13]):
        name = f"encoder/expanded_conv" if block_id == 0 else f"encoder/expanded_conv_{block_id}"
        in_filters = x.shape[-1]
        shortcut = x
        expand_act = None
        if block_id > 0:
            x = expand_act = _pw(x, f[f"{name}/expand"], spec.activation)
            if block_id == 12:
                taps[12] = (expand_act, None)
                break
        x = _depthwise(x, f[f"{name}/depthwise"], spec.stride, spec.activation, impl)
        depthwise_act = x
        if spec.squeeze_excite:
            s = jnp.mean(x, axis=(1, 2), keepdims=True)
            s = _pw(s, f[f"{name}/squeeze_excite_Conv"], "relu")
            s = hard_sigmoid(_pw(s, f[f"{name}/squeeze_excite_Conv_1"], "none"))
            x = x * s
        x = _pw(x, f[f"{name}/project"], "none")
        if spec.stride == 1 and in_filters == spec.filters:
            x = x + shortcut
        taps[block_id] = (expand_act, depthwise_act)
    skips = (taps[3][1], taps[3][0], taps[1][0], None)
    x = taps[12][0]
    recurrent = state is not None
    new_state = []
    for level, skip in enumerate(skips):
        p = f"decoder/bottleneck_{level}"
        y = _depthwise(x, f[f"{p}/depthwise_0"], 1, "relu", impl)
        y = _pw(y, f[f"{p}/pointwise_0"], "relu")
        y = _depthwise(y, f[f"{p}/depthwise_1"], 1, "relu", impl)
        y = _pw(y, f[f"{p}/pointwise_1"], "none")
        x = jax.nn.relu(y + _pw(x, f[f"{p}/shortcut"], "none"))
        if skip is None and head_before_upsample and not recurrent:
            # head(upsample(x)) == upsample(head(x)): the 1x1 head is per-pixel linear and bilinear weights
            # sum to 1, so run the head at half resolution and upsample one channel instead of 16.
            return upsample2x_bilinear(_pw(x, f["decoder/head"], "none")).astype(jnp.float32)
        x = upsample2x_bilinear(x)
        if skip is not None:
            x = x + skip
        if recurrent:
            from seg_jax.models.convlstm import ConvLSTMCell
            cell = ConvLSTMCell(DECODER_WIDTHS[level], gate_activation=gate_activation, dtype=dtype)
            carry, out = cell.apply({"params": f[f"decoder/convlstm_{level}"]}, state[level], x)
            x = x + out if residual_cells else out
            new_state.append(carry)
    logits = _pw(x, f["decoder/head"], "none").astype(jnp.float32)
    return (tuple(new_state), logits) if recurrent else logits


def stem_conv(x: jax.Array, kernel: jax.Array, impl: str) -> jax.Array:
    """The encoder's first conv (3x3, stride 2, TF 'SAME', 3 -> 16 channels), without bias.

    On CPU ('shift_add') it is 27 broadcast multiply-adds in one loop fusion (faster than XLA's convolution
    for 3 input channels; measured: results/MEASUREMENTS.md, 'fused: stem conv as shift-and-add'); elsewhere
    the plain convolution.
    """
    if impl != "shift_add":
        return jax.lax.conv_general_dilated(x, kernel, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    n, h, w, c = x.shape
    k = kernel.shape[0]
    (pt, pb), (pl, pr) = same_padding(h, k, 2), same_padding(w, k, 2)
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    oh, ow = -(-h // 2), -(-w // 2)
    out = None
    for i in range(k):
        for j in range(k):
            win = jax.lax.slice(xp, (0, i, j, 0), (n, i + (oh - 1) * 2 + 1, j + (ow - 1) * 2 + 1, c), (1, 2, 2, 1))
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
