"""U-Net MobileNet (model 2) and U-Net MobileNet & ConvLSTM (model 3).

Both share the MobileNetV3-Large encoder and the residual depthwise decoder, with identical parameter names,
so weights of model 2 initialise the shared part of model 3. Model 3 adds one ConvLSTM after each merge; only
those cells are scanned over time, every other block runs on frames folded into the batch (B*T, H, W, C).
"""
from __future__ import annotations

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.models.convlstm import ConvLSTMCell, LSTMState, ScannedConvLSTM
from seg_jax.models.layers import (
    KERAS_BN_EPSILON,
    KERAS_BN_MOMENTUM,
    DepthwiseConv2D,
    DepthwiseImpl,
    upsample2x_bilinear,
)
from seg_jax.models.mobilenet_v3 import MOBILENET_BN_MOMENTUM, EncoderFeatures, MobileNetV3LargeEncoder

# Decoder stage widths and the ConvLSTM widths that follow each merge (the paper's layout).
DECODER_WIDTHS = (72, 72, 64, 16)
# The downsampling factor of each ConvLSTM cell's state (1/8, 1/4, 1/2 and full resolution), cell by cell.
STATE_SCALES = (8, 4, 2, 1)
RecurrentState = tuple[LSTMState, LSTMState, LSTMState, LSTMState]


class ResidualBottleneck(nn.Module):
    """The paper's decoder "residual block".

    main: DW3x3(bias)-BN-ReLU-Conv1x1-BN-ReLU-DW3x3(bias)-BN-ReLU-Conv1x1-BN; shortcut: Conv1x1-BN;
    output ReLU(main + shortcut). (N, H, W, C) -> (N, H, W, features).
    """
    features: int
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
        def bn(name):
            return nn.BatchNorm(use_running_average=not train, momentum=KERAS_BN_MOMENTUM,
                                epsilon=KERAS_BN_EPSILON, dtype=self.dtype, name=name)

        y = x
        for i in range(2):
            y = DepthwiseConv2D(3, 1, use_bias=True, impl=self.depthwise_impl, dtype=self.dtype,
                                name=f"depthwise_{i}")(y)
            y = nn.relu(bn(f"depthwise_{i}_bn")(y))
            y = nn.Conv(self.features, (1, 1), dtype=self.dtype, name=f"pointwise_{i}")(y)
            y = bn(f"pointwise_{i}_bn")(y)
            if i == 0:
                y = nn.relu(y)
        shortcut = bn("shortcut_bn")(nn.Conv(self.features, (1, 1), dtype=self.dtype, name="shortcut")(x))
        return nn.relu(y + shortcut)


class MobileNetUNetDecoder(nn.Module):
    """Residual decoder over the encoder taps, optionally with ConvLSTM cells after each merge.

    Call with features whose leading axis is B*T (frames folded into the batch). With ``recurrent`` the
    cells see (B, T, ...) and scan over T starting from ``state`` (zeros when None); with ``residual_cells``
    each cell's output is added to its input instead of replacing it (cells with all-zero parameters then
    leave the per-frame decoder exactly as it is, a start that trains by gradient; not the paper's layout).
    Returns (logits (B*T, H, W, 1) float32, new state or None).
    """
    recurrent: bool = False
    gate_activation: str = "hard_sigmoid"
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32
    residual_cells: bool = False

    @nn.compact
    def __call__(self, feats: EncoderFeatures, state: Optional[RecurrentState], time_steps: int, *,
                 train: bool) -> tuple[jax.Array, Optional[RecurrentState]]:
        skips = (feats.depthwise_3, feats.expand_3, feats.expand_1, None)
        x = feats.expand_12
        new_state = []
        for level, (width, skip) in enumerate(zip(DECODER_WIDTHS, skips)):
            x = ResidualBottleneck(width, self.depthwise_impl, self.dtype, name=f"bottleneck_{level}")(x, train=train)
            x = upsample2x_bilinear(x)
            if skip is not None:
                x = x + skip
            if self.recurrent:
                bt, h, w, c = x.shape
                clip = x.reshape(bt // time_steps, time_steps, h, w, c)
                carry = state[level] if state is not None else ConvLSTMCell.initial_state(
                    bt // time_steps, h, w, width, x.dtype)
                carry, clip = ScannedConvLSTM(width, gate_activation=self.gate_activation, dtype=self.dtype,
                                              name=f"convlstm_{level}")(carry, clip)
                new_state.append(carry)
                x = x + clip.reshape(bt, h, w, width) if self.residual_cells else clip.reshape(bt, h, w, width)
        logits = nn.Conv(1, (1, 1), dtype=self.dtype, name="head")(x).astype(jnp.float32)
        return logits, (tuple(new_state) if self.recurrent else None)


def check_images(images: jax.Array, rank: int, multiple: int, model: str) -> None:
    """Raise a clear error for a wrong rank, channel count or spatial size."""
    layout = "(N, H, W, 3)" if rank == 4 else "(B, T, H, W, 3)"
    if images.ndim != rank:
        raise ValueError(f"{model} expects input of rank {rank} {layout}, got shape {tuple(images.shape)}; "
                         f"{'add a batch axis' if images.ndim == rank - 1 else 'reshape your input'}")
    if images.shape[-1] != 3:
        raise ValueError(f"{model} expects 3 RGB channels in the last axis {layout}, got shape "
                         f"{tuple(images.shape)}; convert grayscale/RGBA to RGB first")
    h, w = images.shape[-3], images.shape[-2]
    if h % multiple or w % multiple:
        raise ValueError(f"{model} needs height and width divisible by {multiple}, got {h}x{w}; "
                         f"resize or pad the input (e.g. 256x256 or 160x288)")


class UNetMobileNet(nn.Module):
    """Model 2: MobileNetV3-Large encoder + residual decoder (1,033,545 parameters).

    Input (N, H, W, 3) float in [0, 1], H and W multiples of 32. Output logits (N, H, W, 1) float32.
    """
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32
    encoder_bn_momentum: float = MOBILENET_BN_MOMENTUM

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool) -> jax.Array:
        check_images(images, 4, 32, type(self).__name__)
        feats = MobileNetV3LargeEncoder(self.depthwise_impl, self.dtype, self.encoder_bn_momentum,
                                        name="encoder")(images, train=train)
        logits, _ = MobileNetUNetDecoder(False, depthwise_impl=self.depthwise_impl, dtype=self.dtype,
                                         name="decoder")(feats, None, 1, train=train)
        return logits


class UNetMobileNetConvLSTM(nn.Module):
    """Model 3: model 2 with four ConvLSTM cells scanned over time (2,094,281 parameters).

    ``__call__(clips (B, T, H, W, 3), state=None)`` -> (logits (B, T, H, W, 1), state);
    ``step(state, frame (B, H, W, 3))`` -> (state, logits (B, H, W, 1)) carries (h, c) across calls.
    A state is a tuple of four (h, c) pairs at 1/8, 1/4, 1/2 and full resolution. ``residual_cells``: each
    cell's output is added to its input (see :class:`MobileNetUNetDecoder`; off in the paper's model).
    """
    gate_activation: str = "hard_sigmoid"
    depthwise_impl: DepthwiseImpl = "auto"
    dtype: Any = jnp.float32
    encoder_bn_momentum: float = MOBILENET_BN_MOMENTUM
    residual_cells: bool = False

    @nn.compact
    def __call__(self, clips: jax.Array, state: Optional[RecurrentState] = None, *,
                 train: bool) -> tuple[jax.Array, RecurrentState]:
        check_images(clips, 5, 32, type(self).__name__)
        b, t, h, w, c = clips.shape
        feats = MobileNetV3LargeEncoder(self.depthwise_impl, self.dtype, self.encoder_bn_momentum, name="encoder")(
            clips.reshape(b * t, h, w, c), train=train)
        logits, state = MobileNetUNetDecoder(True, self.gate_activation, self.depthwise_impl, self.dtype,
                                             self.residual_cells, name="decoder")(feats, state, t, train=train)
        return logits.reshape(b, t, h, w, 1), state

    def step(self, state: Optional[RecurrentState], frame: jax.Array, *,
             train: bool = False) -> tuple[RecurrentState, jax.Array]:
        check_images(frame, 4, 32, type(self).__name__ + ".step")
        logits, state = self(frame[:, None], state, train=train)
        return state, logits[:, 0]

    @staticmethod
    def initial_state(batch: int, height: int, width: int, dtype=jnp.float32) -> RecurrentState:
        """Zero (h, c) for every cell, for frames of size height x width."""
        return tuple(ConvLSTMCell.initial_state(batch, height // s, width // s, f, dtype)
                     for s, f in zip(STATE_SCALES, DECODER_WIDTHS))
