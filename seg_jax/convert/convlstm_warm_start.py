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
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from seg_jax.models.convlstm import GATE_ACTIVATIONS
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS


def _readers(level: int) -> list[tuple[str, ...]]:
    """Kernels that take convlstm_<level>'s output as their input (input-channel axis -2)."""
    if level + 1 < len(DECODER_WIDTHS):
        b = f"bottleneck_{level + 1}"
        return [("decoder", b, "depthwise_0", "kernel"), ("decoder", b, "shortcut", "kernel")]
    return [("decoder", "head", "kernel")]


def warm_start_convlstm(variables: Mapping[str, Any], *, scale: float = 0.25, open_bias: float = 2.0,
                        forget_bias: float = -2.0, recurrent_init_scale: float = 0.1,
                        gate_activation: str = "hard_sigmoid") -> dict:
    """Return ``variables`` of model 3 with every ``convlstm_<i>`` cell set as in the module docstring.

    Args:
      variables: {"params", "batch_stats"} of ``UNetMobileNetConvLSTM`` whose shared layers already hold
        trained model-2 weights.
      scale: gain of the candidate gate's identity; small keeps tanh near linear for the decoder's activations.
    Raises ValueError if the variables are not the ConvLSTM model's.
    """
    params = traverse_util.flatten_dict(variables["params"])
    gate = GATE_ACTIVATIONS[gate_activation]
    g_open = float(gate(jnp.float32(open_bias)))
    gain = g_open * g_open * scale
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
        bias[:width] = open_bias
        bias[width:2 * width] = forget_bias
        bias[3 * width:] = open_bias
        params[cell + ("kernel",)] = jnp.asarray(kernel)
        params[cell + ("bias",)] = jnp.asarray(bias)
        params[cell + ("recurrent_kernel",)] = params[cell + ("recurrent_kernel",)] * recurrent_init_scale
        for reader in _readers(level):
            params[reader] = params[reader] / gain
    out = dict(variables)
    out["params"] = traverse_util.unflatten_dict(params)
    return jax.tree_util.tree_map(jnp.asarray, out)


def warm_start_from_weights(mobilenet_weights: str, out_dir: str, *, scale: float = 0.1,
                            forget_bias: float = -2.0, commands: tuple[str, ...] = ()) -> str:
    """Write a ConvLSTM weights folder: a trained mobilenet weights folder + warm-started cells (no training).

    The manifest keeps the mobilenet's input size and aspect handling and records where the weights came from.
    """
    import ml_collections

    from seg_jax import model_io, weights_folder
    from seg_jax.convert.init_from import load_init_variables
    from seg_jax.models import build as model_build

    # Validates the folder (exists, is a mobilenet, file intact) with the project's usual one-line errors.
    _, manifest = model_io.load_weights("mobilenet", mobilenet_weights)
    model_config = ml_collections.ConfigDict(dict(manifest["model"]))
    model_config.name = "convlstm"
    model = model_build.build_model(model_config)
    fresh = model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0), 64, 64)
    variables = warm_start_convlstm(load_init_variables(mobilenet_weights, fresh), scale=scale, forget_bias=forget_bias,
                                    gate_activation=model_config.gate_activation)
    extra = {k: manifest[k] for k in ("input_size", "keep_aspect", "input", "output") if k in manifest}
    extra["warm_start"] = {"from": str(mobilenet_weights), "from_sha256": manifest.get("sha256"), "scale": scale,
                           "forget_bias": forget_bias, "open_bias": 2.0, "recurrent_init_scale": 0.1,
                           "trained_on_clips": False, "commands": list(commands)}
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
    flags.DEFINE_float("forget_bias", -2.0, "Forget-gate bias (-2: hard_sigmoid 0.1, a short memory).")

    def run(_):
        f = flags.FLAGS
        try:
            out = warm_start_from_weights(f.mobilenet, f.out, scale=f.scale, forget_bias=f.forget_bias,
                                          commands=("python -m seg_jax.convert.convlstm_warm_start "
                                                    + " ".join(sys.argv[1:]),))
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"seg_jax.convert.convlstm_warm_start: error: {e}") from None
        print(f"wrote warm-started convlstm weights to {out}")

    app.run(run, argv=argv)


if __name__ == "__main__":
    main()
