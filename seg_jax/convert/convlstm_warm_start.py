"""Start the ConvLSTM model's new cells close to the U-Net MobileNet it is initialised from.

Model 3 puts a ConvLSTM cell in the decoder path after each merge, so when its shared layers come from a trained
model 2 (``config.init_from``), randomly initialised cells destroy what the decoder had learned: the model starts
from "background everywhere" and needs many steps to recover. Instead each cell (input x, F = C_in channels) is
set to pass its input through, nearly linearly, and the layers that read its output are scaled back:

- input kernel: zero except the centre tap of the cell-candidate gate g, ``scale * I``, so g = tanh(scale * x);
- recurrent kernel: small (``recurrent_init_scale`` x its orthogonal init), so training can learn to use it;
- biases: input and output gates at ``open_bias`` (hard_sigmoid(2) = 0.9), forget gate at ``forget_bias``
  (hard_sigmoid(-2) = 0.1), candidate 0. For one frame from a zero state h = 0.9 tanh(0.9 tanh(scale * x)),
  about ``gain = 0.81 * scale`` times x while scale * x is small;
- the readers of h (the next bottleneck's first depthwise and shortcut kernels, or the head) are multiplied by
  1 / gain, so the whole model computes nearly model 2's function on the first step.

The gates stay in the non-saturated range of the hard sigmoid, so every parameter still gets gradients.

With ``input_gate="complement"`` each cell is instead an exponential moving average of its candidate: the input
gate is ``1 - f`` (bias ``-forget_bias``), so ``c_t = f c_{t-1} + (1 - f) tanh(scale * x_t)`` settles at
``tanh(scale * x)`` on a still input; the readers are scaled by the steady-state gain ``o * scale``. A cell with
``f > 0`` then starts a stream below its steady state, so such weights declare ``settle_steps`` in their
manifest: the stream (and a still image) runs the network that many extra times on its first frame
(:meth:`seg_jax.inference.streaming.StreamingStep.init_state`). ``forget_bias`` may be one value per cell (1/8, 1/4, 1/2
and full resolution): a longer memory at the coarse cells steadies the "is this a person" decision, while the
fine cells follow moving edges.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from seg_jax.artifacts import model_io, weights_folder
from seg_jax.convert.init_from import load_init_variables
from seg_jax.models import build as model_build
from seg_jax.models.convlstm import GATE_ACTIVATIONS
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS


def _readers(level: int) -> list[tuple[str, ...]]:
    """Kernels that take convlstm_<level>'s output as their input (input-channel axis -2)."""
    if level + 1 < len(DECODER_WIDTHS):
        b = f"bottleneck_{level + 1}"
        return [("decoder", b, "depthwise_0", "kernel"), ("decoder", b, "shortcut", "kernel")]
    return [("decoder", "head", "kernel")]


INPUT_GATES = ("open", "complement")
Biases = Union[float, Sequence[float]]


def per_cell(forget_bias: Biases) -> tuple[float, ...]:
    """One forget-gate bias per cell (1/8 to full resolution) from a single value or a sequence of four."""
    values = (tuple(float(v) for v in forget_bias) if isinstance(forget_bias, (list, tuple))
              else (float(forget_bias),) * len(DECODER_WIDTHS))
    if len(values) != len(DECODER_WIDTHS):
        raise ValueError(f"forget_bias needs one value or {len(DECODER_WIDTHS)} (one per cell, 1/8 to full "
                         f"resolution), got {len(values)}")
    return values


def settle_steps_for(forget_bias: Biases, input_gate: str, gate_activation: str = "hard_sigmoid",
                     tolerance: float = 1e-2) -> int:
    """Extra first-frame passes that bring every cell within ``tolerance`` of its steady state (0 for 'open',
    whose readers are calibrated to the first frame, or when no cell keeps a memory)."""
    if input_gate == "open":
        return 0
    gate = GATE_ACTIVATIONS[gate_activation]
    f = max(float(gate(jnp.float32(b))) for b in per_cell(forget_bias))
    if f <= 0.0:
        return 0
    if f >= 1.0:
        raise ValueError("a forget gate of 1 never settles; use a forget_bias below the gate's saturation")
    return max(int(math.ceil(math.log(tolerance) / math.log(f))) - 1, 0)


def warm_start_convlstm(variables: Mapping[str, Any], *, scale: float = 0.25, open_bias: float = 2.0,
                        forget_bias: Biases = -2.0, recurrent_init_scale: float = 0.1,
                        gate_activation: str = "hard_sigmoid", input_gate: str = "open") -> dict:
    """Return ``variables`` of model 3 with every ``convlstm_<i>`` cell set as in the module docstring.

    Args:
      variables: {"params", "batch_stats"} of ``UNetMobileNetConvLSTM`` whose shared layers already hold
        trained model-2 weights.
      scale: gain of the candidate gate's identity; small keeps tanh near linear for the decoder's activations.
      forget_bias: one value, or one per cell (1/8, 1/4, 1/2, full resolution).
      recurrent_init_scale: factor on the recurrent kernels (0: the cells see only their own memory).
      input_gate: 'open' (input gate at ``open_bias``) or 'complement' (``1 - f``: a moving average).
    Raises ValueError if the variables are not the ConvLSTM model's or an option is out of range.
    """
    if input_gate not in INPUT_GATES:
        raise ValueError(f"input_gate must be one of {INPUT_GATES}, got {input_gate!r}")
    params = traverse_util.flatten_dict(variables["params"])
    gate = GATE_ACTIVATIONS[gate_activation]
    g_open = float(gate(jnp.float32(open_bias)))
    forget_biases = per_cell(forget_bias)
    # what h is per unit of x: at the steady state for a moving average, on the first frame for 'open' cells
    gain = g_open * scale if input_gate == "complement" else g_open * g_open * scale
    for level, width in enumerate(DECODER_WIDTHS):
        cell = ("decoder", f"convlstm_{level}")
        if cell + ("kernel",) not in params:
            raise ValueError(f"warm_start_convlstm: no decoder/convlstm_{level} in these variables; they are not "
                             f"the convlstm model's")
        kernel = np.zeros(params[cell + ("kernel",)].shape, np.float32)
        c_in = kernel.shape[2]
        if c_in != width:
            raise ValueError(f"warm_start_convlstm: convlstm_{level} has {c_in} inputs for {width} features; "
                             f"the pass-through start needs them equal")
        centre = kernel.shape[0] // 2
        kernel[centre, centre, np.arange(width), 2 * width + np.arange(width)] = scale
        bias = np.zeros((4 * width,), np.float32)
        bias[:width] = -forget_biases[level] if input_gate == "complement" else open_bias
        bias[width:2 * width] = forget_biases[level]
        bias[3 * width:] = open_bias
        params[cell + ("kernel",)] = jnp.asarray(kernel)
        params[cell + ("bias",)] = jnp.asarray(bias)
        params[cell + ("recurrent_kernel",)] = params[cell + ("recurrent_kernel",)] * recurrent_init_scale
        for reader in _readers(level):
            params[reader] = params[reader] / gain
    out = dict(variables)
    out["params"] = traverse_util.unflatten_dict(params)
    return jax.tree_util.tree_map(jnp.asarray, out)


def zero_cells(variables: Mapping[str, Any]) -> dict:
    """``variables`` of model 3 with every ``convlstm_<i>`` parameter zero: with ``residual_cells`` each cell then
    adds nothing (its candidate and so its memory and output are 0), so the model is the per-frame model
    exactly, while every gate sits at 0.5, where its gradient is largest. Raises ValueError without cells."""
    params = traverse_util.flatten_dict(variables["params"])
    cells = [k for k in params if k[:1] == ("decoder",) and k[1].startswith("convlstm_")]
    if not cells:
        raise ValueError("zero_cells: no decoder/convlstm_<i> in these variables; they are not the convlstm model's")
    for k in cells:
        params[k] = jnp.zeros_like(params[k])
    return {**variables, "params": traverse_util.unflatten_dict(params)}


def warm_start_from_weights(mobilenet_weights: str, out_dir: str, *, scale: float = 0.1,
                            forget_bias: Biases = -2.0, recurrent_init_scale: float = 0.1,
                            input_gate: str = "open", commands: tuple[str, ...] = ()) -> str:
    """Write a ConvLSTM weights folder: a trained mobilenet weights folder + warm-started cells (no training).

    The manifest keeps the mobilenet's input size and aspect handling, records where the weights came from, and
    declares ``settle_steps`` (:func:`settle_steps_for`) for the streaming step.
    """
    import ml_collections


    # Validates the folder (exists, is a mobilenet, file intact) with the project's usual one-line errors.
    _, manifest = model_io.load_weights("mobilenet", mobilenet_weights)
    model_config = ml_collections.ConfigDict(dict(manifest["model"]))
    model_config.name = "convlstm"
    model = model_build.build_model(model_config)
    fresh = model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0), 64, 64)
    variables = warm_start_convlstm(load_init_variables(mobilenet_weights, fresh), scale=scale, forget_bias=forget_bias,
                                    recurrent_init_scale=recurrent_init_scale, input_gate=input_gate,
                                    gate_activation=model_config.gate_activation)
    extra = {k: manifest[k] for k in ("input_size", "keep_aspect", "input", "output") if k in manifest}
    biases = per_cell(forget_bias)
    extra["settle_steps"] = settle_steps_for(biases, input_gate, model_config.gate_activation)
    extra["warm_start"] = {"from": str(mobilenet_weights), "from_sha256": manifest.get("sha256"), "scale": scale,
                           "forget_bias": biases[0] if len(set(biases)) == 1 else list(biases),
                           "open_bias": 2.0, "recurrent_init_scale": recurrent_init_scale,
                           "input_gate": input_gate, "trained_on_clips": False, "commands": list(commands)}
    extra["cells"] = {"kind": "hand-set", "command": commands[0] if commands else
                      "seg_jax.convert.convlstm_warm_start.warm_start_from_weights (called from Python)"}
    extra["metrics"] = {"mobilenet_best_val": manifest.get("metrics", {}).get("best_val")}
    weights_folder.save_weights(out_dir, dict(model_config), variables, extra)
    return out_dir


def main(argv=None) -> None:
    """``python -m seg_jax.convert.convlstm_warm_start --mobilenet DIR --out DIR``."""
    import sys

    from absl import app, flags
    flags.DEFINE_string("mobilenet", "seg_jax/weights/mobilenet", "Trained U-Net MobileNet weights folder.")
    flags.DEFINE_string("out", "seg_jax/weights/convlstm", "ConvLSTM weights folder to write.")
    flags.DEFINE_float("scale", 0.1, "Candidate-gate gain of the pass-through.")
    flags.DEFINE_list("forget_bias", ["-2.0"], "Forget-gate bias, one value or one per cell from 1/8 to full "
                      "resolution (hard_sigmoid: -2 -> 0.1, a short memory; 0 -> 0.5; -2.5 -> 0, none).")
    flags.DEFINE_float("recurrent_init_scale", 0.1, "Factor on the recurrent kernels (0: none).")
    flags.DEFINE_enum("input_gate", "open", list(INPUT_GATES), "'open': input gate at 0.9; 'complement': 1 - the "
                      "forget gate, so each cell is a moving average (the stream settles on its first frame).")

    def run(_):
        f = flags.FLAGS
        try:
            try:
                biases = [float(v) for v in f.forget_bias]
            except ValueError:
                raise ValueError(f"--forget_bias must be numbers, got {','.join(f.forget_bias)}") from None
            out = warm_start_from_weights(f.mobilenet, f.out, scale=f.scale,
                                          forget_bias=biases[0] if len(biases) == 1 else biases,
                                          recurrent_init_scale=f.recurrent_init_scale, input_gate=f.input_gate,
                                          commands=("python -m seg_jax.convert.convlstm_warm_start "
                                                    + " ".join(sys.argv[1:]),))
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"seg_jax.convert.convlstm_warm_start: error: {e}") from None
        print(f"wrote warm-started convlstm weights to {out}")

    app.run(run, argv=argv)


if __name__ == "__main__":
    main()
