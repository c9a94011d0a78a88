"""The U-Net MobileNet at inference as data: one list of steps that the fast JAX path and the ONNX exporter walk.

A :class:`Plan` is ``UNetMobileNet`` (or ``UNetMobileNetConvLSTM``, one frame at a time) with every BatchNorm
folded into the convolution before it, written as straight-line :class:`Step` s over named values: a step reads
the values named in ``ins`` and writes the value ``out``. A step with weights names them by ``param``, the Flax
module path '/'-joined (``"encoder/expanded_conv_3/expand"``), which is also its key in the folded weights
(:func:`seg_jax.inference.fused.fold_batchnorm`), and by ``bn``, the BatchNorm beside it that folding merges in.
The encoder's taps are values like any other (the decoder's skips read ``"encoder/expanded_conv_3/depthwise"``).

:func:`walk` runs a plan on a backend, an object with one method per op of :data:`OPS`, each called as
``backend.<op>(step, *inputs)`` and returning the step's value: :class:`seg_jax.inference.fused.JaxOps` computes
it with JAX, :class:`seg_jax.onnx.mobilenet.OnnxOps` appends ONNX nodes. So the architecture is written here
once for both (mirroring the Linen modules of :mod:`seg_jax.models.unet_mobilenet`, whose parameter names it
uses; ``tests/test_plan.py`` checks every Flax parameter is read, and the fused and ONNX tests pin the outputs).
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any

from seg_jax.models.layers import KERAS_BN_EPSILON
from seg_jax.models.mobilenet_v3 import LARGE_BLOCKS, MOBILENET_BN_EPSILON
from seg_jax.models.registry import SPECS, get_spec

# op -> what it computes (NHWC shapes; every op with ``act`` applies that activation last)
OPS = {
    "rescale": "x in [0, 1] -> 2x - 1 (MobileNetV3 sees [-1, 1])",
    "conv": "dense k x k convolution, TF 'SAME', ``stride``, + bias (N, H, W, I) -> (N, H/s, W/s, O)",
    "pointwise": "1x1 convolution + bias (N, H, W, I) -> (N, H, W, O)",
    "depthwise": "depthwise k x k convolution, TF 'SAME', ``stride``, + bias (N, H, W, C) -> (N, H/s, W/s, C)",
    "mean": "mean over height and width (N, H, W, C) -> (N, 1, 1, C)",
    "mul": "a * b (broadcast)",
    "add": "a + b",
    "upsample": "bilinear 2x, half-pixel centres (N, H, W, C) -> (N, 2H, 2W, C)",
    "convlstm": "one ConvLSTM step on x with the state of cell ``level``, gates ``act``; the value is h (N, H, W, F)",
}
ACTIVATIONS = ("none", "relu", "hard_swish", "hard_sigmoid")
GATES = ("hard_sigmoid", "sigmoid")  # ConvLSTM gate activations (``ConvLSTMCell.gate_activation``)

STEM_FILTERS = 16  # the stem conv's width (MobileNetV3LargeEncoder's ``conv``)
ENCODER_BLOCKS = 13  # blocks 0..12 of LARGE_BLOCKS; block 12 stops after its expansion (the last tap)
# The decoder's skips, deepest level first (None: the last level has none); the bottom is block 12's expansion.
SKIPS = ("encoder/expanded_conv_3/depthwise", "encoder/expanded_conv_3/expand", "encoder/expanded_conv_1/expand",
         None)
BOTTOM = "encoder/expanded_conv_12/expand"


@dataclasses.dataclass(frozen=True)
class Step:
    """One op of a :class:`Plan`.

    Attributes:
      op: a key of :data:`OPS`.
      out: the name of the value it writes (unique in the plan).
      ins: the names of the values it reads.
      param: the folded-weights key (Flax module path) of its weights; "" for ops without weights.
      act: the activation applied last (:data:`ACTIVATIONS`), or the gate activation of a 'convlstm' step.
      stride: of a 'conv' or 'depthwise' step.
      bn: the Flax BatchNorm module beside ``param`` that folding merges into it; "" for none.
      eps: that BatchNorm's epsilon.
      level: the recurrent state's index of a 'convlstm' step.
    """
    op: str
    out: str
    ins: tuple[str, ...]
    param: str = ""
    act: str = "none"
    stride: int = 1
    bn: str = ""
    eps: float = 0.0
    level: int = -1


@dataclasses.dataclass(frozen=True)
class Plan:
    """The steps, the name of the input value (the image, (N, H, W, 3) in [0, 1]) and of the output value (logits
    (N, H, W, 1)); ``recurrent``: it has 'convlstm' steps, one per level of the state."""
    steps: tuple[Step, ...]
    output: str
    recurrent: bool
    input: str = "image"


def _encoder(add) -> str:
    """Append the MobileNetV3-Large encoder's steps (stem, blocks 0-11, block 12's expansion); returns the last."""
    def conv_bn(op: str, path: str, x: str, act: str, stride: int = 1) -> str:
        bn = ("conv" if path == "encoder/conv" else path.rsplit("/", 1)[1]) + "_BatchNormalization"
        return add(op, path, x, param=path, act=act, stride=stride, bn=bn, eps=MOBILENET_BN_EPSILON)

    x = conv_bn("conv", "encoder/conv", add("rescale", "rescaled", "image"), "hard_swish", stride=2)
    in_filters = STEM_FILTERS
    for block_id, spec in enumerate(LARGE_BLOCKS[:ENCODER_BLOCKS]):
        name = "encoder/expanded_conv" if block_id == 0 else f"encoder/expanded_conv_{block_id}"
        block_in = x
        if block_id > 0:  # Keras' block 0 has no expansion
            x = conv_bn("pointwise", f"{name}/expand", x, spec.activation)
            if block_id == ENCODER_BLOCKS - 1:
                break
        x = conv_bn("depthwise", f"{name}/depthwise", x, spec.activation, spec.stride)
        if spec.squeeze_excite:
            s = add("mean", f"{name}/squeeze_excite_mean", x)
            s = add("pointwise", f"{name}/squeeze_excite_Conv", s, param=f"{name}/squeeze_excite_Conv", act="relu")
            s = add("pointwise", f"{name}/squeeze_excite_Conv_1", s, param=f"{name}/squeeze_excite_Conv_1",
                    act="hard_sigmoid")
            x = add("mul", f"{name}/squeeze_excite", x, s)
        x = conv_bn("pointwise", f"{name}/project", x, "none")
        if spec.stride == 1 and in_filters == spec.filters:
            x = add("add", f"{name}/residual", x, block_in)
        in_filters = spec.filters
    return x


def _bottleneck(add, x: str, level: int) -> str:
    """Append decoder level ``level``'s residual block: ReLU(DW-ReLU-PW-ReLU-DW-ReLU-PW + PW shortcut)."""
    p = f"decoder/bottleneck_{level}"

    def conv_bn(op: str, layer: str, x: str, act: str) -> str:
        bn = "shortcut_bn" if layer == "shortcut" else f"{layer}_bn"
        return add(op, f"{p}/{layer}", x, param=f"{p}/{layer}", act=act, bn=bn, eps=KERAS_BN_EPSILON)

    y = conv_bn("depthwise", "depthwise_0", x, "relu")
    y = conv_bn("pointwise", "pointwise_0", y, "relu")
    y = conv_bn("depthwise", "depthwise_1", y, "relu")
    y = conv_bn("pointwise", "pointwise_1", y, "none")
    return add("add", f"{p}/out", y, conv_bn("pointwise", "shortcut", x, "none"), act="relu")


@functools.lru_cache(maxsize=None)
def mobilenet_plan(recurrent: bool = False, gate_activation: str = "hard_sigmoid", residual_cells: bool = False,
                   head_first: bool = True) -> Plan:
    """The plan of ``UNetMobileNet`` (``recurrent`` False) or of one ``UNetMobileNetConvLSTM.step``.

    ``gate_activation`` and ``residual_cells`` are the ConvLSTM model's options of those names. ``head_first``:
    run the 1x1 head before the last 2x upsample (per frame only: head(upsample(x)) == upsample(head(x)), the
    head being per-pixel affine and the bilinear weights summing to 1, so one channel is upsampled instead of
    16); False keeps the Linen module's order.
    """
    if gate_activation not in GATES:
        raise ValueError(f"gate_activation must be one of {list(GATES)}, got {gate_activation!r}")
    steps: list[Step] = []

    def add(op: str, out: str, *ins: str, **attrs: Any) -> str:
        steps.append(Step(op, out, ins, **attrs))
        return out

    _encoder(add)
    x = BOTTOM
    for level, skip in enumerate(SKIPS):
        x = _bottleneck(add, x, level)
        if skip is None and head_first and not recurrent:
            x = add("upsample", "logits", add("pointwise", "decoder/head", x, param="decoder/head"))
            break
        x = add("upsample", f"decoder/up_{level}", x)
        if skip is not None:
            x = add("add", f"decoder/merge_{level}", x, skip)
        if recurrent:
            cell = f"decoder/convlstm_{level}"
            h = add("convlstm", cell, x, param=cell, act=gate_activation, level=level)
            x = add("add", f"{cell}/residual", x, h) if residual_cells else h
    else:
        x = add("pointwise", "decoder/head", x, param="decoder/head")
    return Plan(tuple(steps), x, recurrent)


def plan_for(model_name: str, gate_activation: str = "hard_sigmoid", residual_cells: bool = False) -> Plan:
    """The plan of a registered foldable model (its spec says whether it is temporal) with those options;
    a one-line ValueError for a model that has none (the U-Net)."""
    spec = get_spec(model_name)
    if not spec.foldable:
        foldable = [name for name, s in SPECS.items() if s.foldable]
        raise ValueError(f"model {model_name!r} has no folded plan; only {foldable} have one")
    return mobilenet_plan(spec.temporal, gate_activation, bool(residual_cells))


def walk(plan: Plan, backend: Any, image: Any) -> Any:
    """Run ``plan`` on ``backend`` (see the module docstring) from the value ``image``; returns the output value."""
    values = {plan.input: image}
    for step in plan.steps:
        values[step.out] = getattr(backend, step.op)(step, *(values[name] for name in step.ins))
    return values[plan.output]


__all__ = ["OPS", "Plan", "Step", "mobilenet_plan", "plan_for", "walk"]
