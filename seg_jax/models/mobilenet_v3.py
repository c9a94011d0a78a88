"""MobileNetV3-Large encoder, laid out like ``keras.applications.MobileNetV3Large``.

Submodule names mirror the Keras layer names ('/' becomes '_'): ``conv``, ``conv_BatchNormalization``,
``expanded_conv`` ... ``expanded_conv_12`` with ``expand``, ``depthwise``, ``squeeze_excite_Conv``,
``project`` and their ``*_BatchNormalization``. That keeps parameter counts identical to Keras and lets
``seg_jax.convert.keras_mobilenet`` map ImageNet weights one to one.

Input convention: float images in [0, 1] (NHWC, RGB). Keras' MobileNetV3 rescales 0..255 inputs to
[-1, 1]; we apply the same affine map to [0, 1] inputs (x * 2 - 1), so imported weights see what they
were trained on.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.models.layers import DepthwiseConv2D, DepthwiseImpl, hard_sigmoid, hard_swish

MOBILENET_BN_MOMENTUM = 0.999
MOBILENET_BN_EPSILON = 1e-3


def make_divisible(v: float, divisor: int = 8) -> int:
    """Keras' ``_depth``: round channels to a multiple of 8, never dropping more than 10%."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


class BlockSpec(NamedTuple):
    expansion: float
    filters: int
    kernel: int
    stride: int
    squeeze_excite: bool
    activation: str  # 'relu' | 'hard_swish'


# The 15 inverted-residual blocks of MobileNetV3-Large (alpha 1.0, minimalistic False).
LARGE_BLOCKS = (
    BlockSpec(1, 16, 3, 1, False, "relu"),
    BlockSpec(4, 24, 3, 2, False, "relu"),
    BlockSpec(3, 24, 3, 1, False, "relu"),
    BlockSpec(3, 40, 5, 2, True, "relu"),
    BlockSpec(3, 40, 5, 1, True, "relu"),
    BlockSpec(3, 40, 5, 1, True, "relu"),
    BlockSpec(6, 80, 3, 2, False, "hard_swish"),
    BlockSpec(2.5, 80, 3, 1, False, "hard_swish"),
    BlockSpec(2.3, 80, 3, 1, False, "hard_swish"),
    BlockSpec(2.3, 80, 3, 1, False, "hard_swish"),
    BlockSpec(6, 112, 3, 1, True, "hard_swish"),
    BlockSpec(6, 112, 3, 1, True, "hard_swish"),
    BlockSpec(6, 160, 5, 2, True, "hard_swish"),
    BlockSpec(6, 160, 5, 1, True, "hard_swish"),
    BlockSpec(6, 160, 5, 1, True, "hard_swish"),
)

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {"relu": nn.relu, "hard_swish": hard_swish}


class EncoderFeatures(NamedTuple):
    """The four feature maps the U-Net decoder taps (shapes at 256x256 input)."""
    expand_1: jax.Array        # layer 16:  expanded_conv_1 expand activation, (N, 128, 128, 64)
    expand_3: jax.Array        # layer 34:  expanded_conv_3 expand activation, (N, 64, 64, 72)
    depthwise_3: jax.Array     # layer 38:  expanded_conv_3 depthwise activation, (N, 32, 32, 72)
    expand_12: jax.Array       # layer 193: expanded_conv_12 expand activation, (N, 16, 16, 672)


class InvertedResidual(nn.Module):
    """Keras ``_inverted_res_block``. Returns (output, expand_activation, depthwise_activation).

    Attributes:
      spec: block hyper-parameters.
      has_expand: False for block 0 (Keras skips the 1x1 expansion there).
      expand_only: stop after the expansion (used for the encoder's last tap).
    """
    spec: BlockSpec
    has_expand: bool = True
    expand_only: bool = False
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32
    bn_momentum: float = MOBILENET_BN_MOMENTUM

    def _bn(self, name: str, train: bool) -> nn.BatchNorm:
        return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                            epsilon=MOBILENET_BN_EPSILON, dtype=self.dtype, name=name)

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool):
        spec = self.spec
        act = ACTIVATIONS[spec.activation]
        in_filters = x.shape[-1]
        shortcut = x
        expand_act = None
        if self.has_expand:
            x = nn.Conv(make_divisible(in_filters * spec.expansion), (1, 1), use_bias=False, dtype=self.dtype,
                        name="expand")(x)
            x = act(self._bn("expand_BatchNormalization", train)(x))
            expand_act = x
            if self.expand_only:
                return x, expand_act, None
        x = DepthwiseConv2D(spec.kernel, spec.stride, use_bias=False, impl=self.depthwise_impl, dtype=self.dtype,
                            name="depthwise")(x)
        x = act(self._bn("depthwise_BatchNormalization", train)(x))
        depthwise_act = x
        if spec.squeeze_excite:
            channels = x.shape[-1]
            s = jnp.mean(x, axis=(1, 2), keepdims=True)
            s = nn.relu(nn.Conv(make_divisible(channels * 0.25), (1, 1), dtype=self.dtype,
                                name="squeeze_excite_Conv")(s))
            s = hard_sigmoid(nn.Conv(channels, (1, 1), dtype=self.dtype, name="squeeze_excite_Conv_1")(s))
            x = x * s
        x = nn.Conv(spec.filters, (1, 1), use_bias=False, dtype=self.dtype, name="project")(x)
        x = self._bn("project_BatchNormalization", train)(x)
        if spec.stride == 1 and in_filters == spec.filters:
            x = x + shortcut
        return x, expand_act, depthwise_act


class MobileNetV3LargeEncoder(nn.Module):
    """MobileNetV3-Large up to ``expanded_conv_12`` expand + BN + hard-swish.

    Input (N, H, W, 3) float in [0, 1]; H and W multiples of 32. Returns ``EncoderFeatures``.
    ``bn_momentum``: Keras uses 0.999, which leaves the running statistics far from the batch statistics for
    the first few thousand steps of a short from-scratch run; 0.99 suits short schedules.
    """
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32
    bn_momentum: float = MOBILENET_BN_MOMENTUM

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> EncoderFeatures:
        x = images.astype(self.dtype) * 2.0 - 1.0
        x = nn.Conv(16, (3, 3), strides=(2, 2), padding="SAME", use_bias=False, dtype=self.dtype, name="conv")(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         epsilon=MOBILENET_BN_EPSILON, dtype=self.dtype, name="conv_BatchNormalization")(x)
        x = hard_swish(x)
        taps = {}
        for block_id, spec in enumerate(LARGE_BLOCKS[:13]):
            name = "expanded_conv" if block_id == 0 else f"expanded_conv_{block_id}"
            block = InvertedResidual(spec, has_expand=block_id > 0, expand_only=block_id == 12,
                                     depthwise_impl=self.depthwise_impl, dtype=self.dtype,
                                     bn_momentum=self.bn_momentum, name=name)
            x, expand_act, depthwise_act = block(x, train=train)
            taps[block_id] = (expand_act, depthwise_act)
        return EncoderFeatures(expand_1=taps[1][0], expand_3=taps[3][0], depthwise_3=taps[3][1],
                               expand_12=taps[12][0])
