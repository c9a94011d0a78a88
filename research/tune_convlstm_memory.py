"""Sweep the ConvLSTM warm start's cell memory on real video: flicker, dtSSD and Dice per setting.

    python -m research.tune_convlstm_memory --data_root ../shared/data --splits train,val \\
        --forgets "0,0,0,0;0.4,0,0,0;0.5,0,0,0" --out results/tuning/convlstm-memory.json

Each setting is a hand-set construction (:func:`seg_jax.convert.convlstm_warm_start.warm_start_convlstm`, no
training): the shipped U-Net MobileNet with every ConvLSTM cell a moving average of its input (input gate
``1 - f``, no recurrent kernel) whose forget gate ``f`` is given per cell, from 1/8 to full resolution; each
stream is settled on its first frame. The clips are streamed through the shipped inference size, refinement
and stabiliser (:data:`seg_jax.inference.segmenter.DEFAULT_STABILISE`); the per-frame U-Net MobileNet and the first
construction (``input_gate='open'``, ``--open_warm_start``) are scored beside them. Settings are chosen on clips
the test split does not hold, like the stabiliser's.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from seg_jax.configs.default import DEFAULT_DATA_ROOT


def forget_bias(f: float, gate_activation: str = "hard_sigmoid") -> float:
    """The bias whose gate value is ``f`` (0 <= f < 1): the inverse of the gate activation (0 -> saturated)."""
    import math
    if not 0.0 <= f < 1.0:
        raise ValueError(f"a forget gate must be in [0, 1), got {f}")
    if gate_activation == "hard_sigmoid":
        return (f - 0.5) / 0.2
    return math.log(f / (1.0 - f)) if f > 0 else -20.0


def parse_forgets(text: str) -> list[tuple[float, ...]]:
    """'0,0,0,0;0.4,0,0,0' -> [(0, 0, 0, 0), (0.4, 0, 0, 0)]; one-line ValueError on a bad value."""
    try:
        settings = [tuple(float(v) for v in item.split(",")) for item in text.split(";") if item.strip()]
    except ValueError:
        raise ValueError(f"--forgets must be ';'-separated lists of 4 numbers, got {text!r}") from None
    if not settings or any(len(s) != 4 for s in settings):
        raise ValueError(f"--forgets needs 4 forget-gate values per setting (1/8 to full resolution), got {text!r}")
    return settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mobilenet", default=None, help="U-Net MobileNet weights folder (default: shipped)")
    parser.add_argument("--data_root", default=DEFAULT_DATA_ROOT)
    parser.add_argument("--splits", default="train,val", help="DAVIS splits to sweep on (comma separated)")
    parser.add_argument("--forgets", default="0,0,0,0;0.3,0,0,0;0.4,0,0,0;0.5,0,0,0",
                        help="';'-separated settings, each 4 forget-gate values (1/8, 1/4, 1/2, full resolution)")
    parser.add_argument("--scale", type=float, default=0.02, help="candidate-gate gain (small: near linear)")
    parser.add_argument("--open_warm_start", type=int, default=1,
                        help="1: also score the 'open' warm start (warm_start_convlstm's defaults, gain 0.1)")
    parser.add_argument("--out", default="", help="write the table as JSON here")
    args = parser.parse_args(argv)

    import jax
    import ml_collections

    from research.tune_stabilise import davis_clip_files, network_pass, score
    from seg_jax.artifacts import model_io, weights_folder
    from seg_jax.convert.convlstm_warm_start import settle_steps_for, warm_start_convlstm
    from seg_jax.convert.init_from import load_init_variables
    from seg_jax.inference.segmenter import DEFAULT_STABILISE, Segmenter
    from seg_jax.models import build as model_build
    from seg_jax.ops.stabilise import Stabilise
    try:
        settings = parse_forgets(args.forgets)
        files = davis_clip_files(args.data_root, args.splits)
        mobilenet = args.mobilenet or str(weights_folder.shipped_weights_dir("mobilenet"))
        _, manifest = model_io.load_weights("mobilenet", mobilenet)
    except (ValueError, FileNotFoundError) as e:
        print(f"tune_convlstm_memory: {e}", file=sys.stderr)
        return 2
    config = ml_collections.ConfigDict(dict(manifest["model"]))
    config.name = "convlstm"
    model = model_build.build_model(config)
    base = load_init_variables(mobilenet, model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0), 64, 64))
    rows = []

    def report(name, segmenter, extra):
        sequences, step = network_pass(segmenter, files)
        row = {"model": name, **extra, **score(sequences, step, DEFAULT_STABILISE)}
        rows.append(row)
        print(f"{name} {extra}: flicker {row['flicker']:.5f} dtSSD {row['dtssd']:.3f} Dice {row['dice']:.4f}",
              flush=True)
        return sequences

    sequences = report("mobilenet", Segmenter("mobilenet", mobilenet, stabilise=Stabilise()), {})
    if args.open_warm_start:  # the first construction: near pass-through cells, readers set for the first frame
        variables = warm_start_convlstm(base, scale=0.1, gate_activation=config.gate_activation)
        report("convlstm", Segmenter("convlstm", variables=variables, model_config=dict(config), stabilise=Stabilise(),
                                     settle_steps=0),
               {"input_gate": "open", "forget_bias": -2.0, "scale": 0.1, "recurrent_init_scale": 0.1})
    for forgets in settings:
        biases = [forget_bias(f, config.gate_activation) for f in forgets]
        settle = settle_steps_for(biases, "complement", config.gate_activation)
        variables = warm_start_convlstm(base, scale=args.scale, forget_bias=biases, recurrent_init_scale=0.0,
                                        input_gate="complement", gate_activation=config.gate_activation)
        segmenter = Segmenter("convlstm", variables=variables, model_config=dict(config),
                              stabilise=Stabilise(), settle_steps=settle)
        report("convlstm", segmenter, {"forget": list(forgets), "forget_bias": biases, "scale": args.scale,
                                       "settle_steps": settle})
    if args.out:
        table = {"mobilenet": mobilenet, "splits": args.splits, "sequences": sorted(sequences),
                 "stabilise": dataclasses.asdict(DEFAULT_STABILISE), "rows": rows}
        Path(args.out).write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
