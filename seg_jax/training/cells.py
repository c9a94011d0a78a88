"""Training only the ConvLSTM cells of model 3 on cached per-frame features, streamed the way they run.

The U-Net MobileNet and ConvLSTM model (:class:`seg_jax.models.unet_mobilenet.UNetMobileNetConvLSTM`) runs, per
frame: encoder -> bottleneck_0 -> 2x up + skip -> cell 0 -> bottleneck_1 -> 2x up + skip -> cell 1 -> ... -> head.
With the per-frame network frozen, everything up to cell 0's input depends on the frame alone, so it is computed
once per frame and cached (:class:`CellInputs`: cell 0's input at 1/8 and the encoder's two finer skips at 1/4 and
1/2); a training step then costs only the cells and the decoder blocks after them (:class:`DecoderTail`, the same
layers under the same parameter names, so the decoder's variables plug in unchanged).

Cells outside ``DecoderTail.cells`` are skipped: with ``residual_cells`` a cell whose parameters are all zero adds
exactly nothing (see :func:`seg_jax.convert.convlstm_warm_start.zero_cells`), so skipping it is the same model and
saves its cost; :func:`check_skipped_cells_zero` guards that.

:func:`stream_chunk` scans K frames of B parallel streams carrying the recurrent state in and out, resetting it to
zero where a clip starts (``resets``); a training run carries the state from one chunk to the next (truncated
back-propagation through time), so the cells learn on states as old as the clips, not only the first few frames.
"""
from __future__ import annotations

from typing import Any, Mapping, NamedTuple, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.models.convlstm import ConvLSTMCell
from seg_jax.models.layers import upsample2x_bilinear
from seg_jax.models.mobilenet_v3 import MobileNetV3LargeEncoder
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS, STATE_SCALES, RecurrentState, ResidualBottleneck
from seg_jax.training.losses import segmentation_loss


class CellInputs(NamedTuple):
    """What the frozen per-frame network hands the cells, for an input of h x w (leading axes free):
    ``cell0`` cell 0's input (..., h/8, w/8, 72); ``expand_3`` (..., h/4, w/4, 72) and ``expand_1``
    (..., h/2, w/2, 64), the encoder skips added after bottleneck_1 and bottleneck_2."""
    cell0: Any
    expand_3: Any
    expand_1: Any


def _sub(variables: Mapping[str, Any], *path: str) -> dict:
    """The variables of one submodule: {"params": ..., "batch_stats": ...} at ``path``."""
    out = {}
    for collection in ("params", "batch_stats"):
        tree = variables.get(collection, {})
        for key in path:
            tree = tree.get(key, {}) if isinstance(tree, Mapping) else {}
        if tree:
            out[collection] = tree
    return out


def frozen_inputs(variables: Mapping[str, Any], images: jax.Array, depthwise_impl: str = "auto") -> CellInputs:
    """Images (N, h, w, 3) in [0, 1] (h, w multiples of 32) -> :class:`CellInputs` (float32), BatchNorm in
    inference mode. ``variables``: the U-Net MobileNet's, or model 3's (the shared layers have the same names)."""
    feats = MobileNetV3LargeEncoder(depthwise_impl).apply(_sub(variables, "encoder"), images, train=False)
    x = ResidualBottleneck(DECODER_WIDTHS[0], depthwise_impl).apply(_sub(variables, "decoder", "bottleneck_0"),
                                                                    feats.expand_12, train=False)
    cell0 = upsample2x_bilinear(x) + feats.depthwise_3
    return CellInputs(cell0, feats.expand_3, feats.expand_1)


class DecoderTail(nn.Module):
    """One frame of model 3's decoder from cell 0's input on: ``(state, CellInputs (B, ...)) -> (state,
    logits (B, h, w, 1) float32)``. Apply it with model 3's ``decoder`` variables (same submodule names).

    Attributes:
      cells: the levels whose cell runs (0 = 1/8 ... 3 = full resolution); the others are skipped, which equals
        the full model only for residual cells with zero parameters (their state stays as it was).
      residual_cells: each cell's output added to its input (True) or replacing it (the paper's layout).
    """
    cells: tuple[int, ...] = (0, 1, 2, 3)
    residual_cells: bool = True
    gate_activation: str = "hard_sigmoid"
    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, state: RecurrentState, inputs: CellInputs) -> tuple[RecurrentState, jax.Array]:
        skips = (None, inputs.expand_3, inputs.expand_1, None)
        x = inputs.cell0
        new_state = list(state)
        for level, width in enumerate(DECODER_WIDTHS):
            if level > 0:
                x = ResidualBottleneck(width, self.depthwise_impl, name=f"bottleneck_{level}")(x, train=False)
                x = upsample2x_bilinear(x)
                if skips[level] is not None:
                    x = x + skips[level]
            if level in self.cells:
                carry, out = ConvLSTMCell(width, gate_activation=self.gate_activation,
                                          name=f"convlstm_{level}")(state[level], x)
                new_state[level] = carry
                x = x + out if self.residual_cells else out
        logits = nn.Conv(1, (1, 1), name="head")(x).astype(jnp.float32)
        return tuple(new_state), logits


def zero_state(batch: int, height: int, width: int) -> RecurrentState:
    """Zero (h, c) for every cell at an input of height x width (the model's own layout)."""
    return tuple(ConvLSTMCell.initial_state(batch, height // s, width // s, f)
                 for s, f in zip(STATE_SCALES, DECODER_WIDTHS))


def check_skipped_cells_zero(params: Mapping[str, Any], cells: Sequence[int]) -> None:
    """ValueError unless every ``decoder/convlstm_<i>`` not in ``cells`` has all-zero parameters (only then is
    skipping it the same model)."""
    for level in range(len(DECODER_WIDTHS)):
        if level in cells:
            continue
        leaves = jax.tree_util.tree_leaves(params["decoder"][f"convlstm_{level}"])
        if any(bool(jnp.any(leaf != 0)) for leaf in leaves):
            raise ValueError(f"convlstm_{level} has non-zero parameters but is not in cells {tuple(cells)}; "
                             "train it too or zero it (seg_jax.convert.convlstm_warm_start.zero_cells)")


def _reset(state: RecurrentState, keep: jax.Array) -> RecurrentState:
    """Zero the state of the streams where ``keep`` (B,) is 0."""
    return jax.tree_util.tree_map(lambda s: s * keep.astype(s.dtype)[:, None, None, None], state)


def stream_chunk(tail: DecoderTail, decoder_variables: Mapping[str, Any], state: RecurrentState,
                 inputs: CellInputs, resets: jax.Array) -> tuple[RecurrentState, jax.Array]:
    """Scan ``tail`` over K frames of B streams: ``inputs`` (B, K, ...), ``resets`` (B, K) bool (True where a clip
    starts: the state is zeroed before that frame). Returns (state after the last frame, logits (B, K, h, w, 1))."""
    def step(carry, xs):
        frame, reset = xs
        carry = _reset(carry, 1 - reset.astype(jnp.int32))
        return tail.apply(decoder_variables, carry, frame)

    time_major = jax.tree_util.tree_map(lambda a: jnp.swapaxes(a, 0, 1), (CellInputs(*inputs), resets))
    state, logits = jax.lax.scan(step, state, time_major)
    return state, jnp.swapaxes(logits, 0, 1)


def steady_change_loss(logits: jax.Array, targets: jax.Array, resets: jax.Array, threshold: float = 0.05
                       ) -> jax.Array:
    """Mean squared change of the predicted probability between consecutive frames of a clip, counted only where
    the truth is steady (|change| < ``threshold``) and not across a clip start. (B, K, h, w, 1) -> scalar."""
    probs = jax.nn.sigmoid(logits)
    change = probs[:, 1:] - probs[:, :-1]
    steady = (jnp.abs(targets[:, 1:] - targets[:, :-1]) < threshold).astype(jnp.float32)
    same_clip = (1.0 - resets[:, 1:].astype(jnp.float32))[:, :, None, None, None]
    weights = steady * same_clip
    return jnp.sum(jnp.square(change) * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def split_cells(params: Mapping[str, Any], cells: Sequence[int]) -> tuple[dict, dict]:
    """Model 3's ``params`` -> (trainable {"convlstm_<i>": ...} for ``cells``, the decoder's other params)."""
    decoder = dict(params["decoder"])
    trainable = {f"convlstm_{i}": decoder.pop(f"convlstm_{i}") for i in cells}
    return trainable, decoder


def chunk_loss(trainable: Mapping[str, Any], frozen: Mapping[str, Any], tail: DecoderTail, state: RecurrentState,
               inputs: CellInputs, targets: jax.Array, resets: jax.Array, *, loss: str = "bce_dice",
               steady_weight: float = 0.0) -> tuple[jax.Array, tuple[RecurrentState, jax.Array]]:
    """Loss of one chunk and (state out, logits). ``frozen`` holds the decoder's other params and its
    ``batch_stats`` as {"params": ..., "batch_stats": ...}; ``targets`` (B, K, h, w, 1) in [0, 1]."""
    variables = {"params": {**frozen["params"], **trainable}, "batch_stats": frozen["batch_stats"]}
    state, logits = stream_chunk(tail, variables, state, inputs, resets)
    value = segmentation_loss(loss, logits, targets)
    if steady_weight:
        value = value + steady_weight * steady_change_loss(logits, targets, resets)
    return value, (state, logits)


def to_float_inputs(arrays: Sequence[np.ndarray]) -> CellInputs:
    """Cached float16 arrays -> float32 :class:`CellInputs` on device."""
    return CellInputs(*(jnp.asarray(a, jnp.float32) for a in arrays))


__all__ = ["CellInputs", "DecoderTail", "frozen_inputs", "zero_state", "check_skipped_cells_zero", "stream_chunk",
           "steady_change_loss", "split_cells", "chunk_loss", "to_float_inputs"]
