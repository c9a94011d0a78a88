"""Convolutional LSTM cell (Shi et al. 2015), parameter-compatible with Keras ``ConvLSTM2D``.

Parameters: ``kernel`` (3, 3, C_in, 4F), ``recurrent_kernel`` (3, 3, F, 4F), ``bias`` (4F,), gates in
Keras order (input, forget, cell, output): 4F(9(C_in + F) + 1) parameters. No normalisation inside the cell.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.models.conv_same import conv_same
from seg_jax.models.layers import keras_hard_sigmoid

LSTMState = tuple[jax.Array, jax.Array]  # (h, c), each (B, H, W, F)

GATE_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "hard_sigmoid": keras_hard_sigmoid,  # tf.keras 2.x default, what the paper's model used
    "sigmoid": jax.nn.sigmoid,           # Keras 3 default
}


def _unit_forget_bias(features: int):
    def init(key, shape, dtype=jnp.float32):
        del key
        return jnp.zeros(shape, dtype).at[features:2 * features].set(1.0)
    return init


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: ``(state, x) -> (state, h)``.

    Attributes:
      features: F, the number of hidden channels.
      kernel_size: square kernel, 'same' padding.
      gate_activation: 'hard_sigmoid' (tf.keras 2.x, the paper) or 'sigmoid'.
    Shapes: x (B, H, W, C_in); h, c and the output (B, H, W, F).
    """
    features: int
    kernel_size: int = 3
    gate_activation: str = "hard_sigmoid"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, state: LSTMState, x: jax.Array) -> tuple[LSTMState, jax.Array]:
        if self.gate_activation not in GATE_ACTIVATIONS:
            raise ValueError(f"gate_activation must be one of {sorted(GATE_ACTIVATIONS)}, got {self.gate_activation!r}")
        gate = GATE_ACTIVATIONS[self.gate_activation]
        k, f = self.kernel_size, self.features
        kernel = self.param("kernel", nn.initializers.he_normal(), (k, k, x.shape[-1], 4 * f))
        recurrent_kernel = self.param("recurrent_kernel", nn.initializers.orthogonal(), (k, k, f, 4 * f))
        bias = self.param("bias", _unit_forget_bias(f), (4 * f,))
        h, c = state
        # One convolution over [x, h] with the two kernels stacked on the input axis.
        inputs = jnp.concatenate([x.astype(self.dtype), h.astype(self.dtype)], axis=-1)
        stacked = jnp.concatenate([kernel, recurrent_kernel], axis=2).astype(self.dtype)
        z = conv_same(inputs, stacked)
        z = z + bias.astype(self.dtype)
        i, fg, g, o = jnp.split(z, 4, axis=-1)
        c_new = gate(fg) * c.astype(self.dtype) + gate(i) * jnp.tanh(g)
        h_new = gate(o) * jnp.tanh(c_new)
        c_new = c_new.astype(c.dtype)
        h_new = h_new.astype(h.dtype)
        return (h_new, c_new), h_new

    @staticmethod
    def initial_state(batch: int, height: int, width: int, features: int, dtype=jnp.float32) -> LSTMState:
        """A fresh zero (h, c); two separate buffers so both can be donated."""
        shape = (batch, height, width, features)
        return jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)


# Scans the cell over axis 1 of (B, T, H, W, C), sharing parameters across time.
ScannedConvLSTM = nn.scan(ConvLSTMCell, variable_broadcast="params", split_rngs={"params": False},
                          in_axes=1, out_axes=1)
