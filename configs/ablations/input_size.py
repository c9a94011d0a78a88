"""Ablation: input size (mobilenet), 128 / 192 / 256 square.

  python -m seg_jax.ablations --sweep configs/ablations/input_size.py --out results/ablations/input_size

Each run is evaluated at its own input size (the resized protocol).
"""

from seg_jax.configs.default import DEFAULT_DATA_ROOT as DATA


def get_sweep(arg=None):
    sizes = [int(s) for s in arg.split(",")] if arg else [128, 192, 256]
    return {
        "title": "input size (mobilenet)",
        "base": "configs/mobilenet.py",
        "base_overrides": {"data.root": DATA, "num_steps": 4000, "eval_every": 500, "checkpoint_every": 500},
        "runs": {f"{s}x{s}": {"data.image_size": (s, s)} for s in sizes},
        "eval_split": "val",
        "eval_subsets": ["portraits", "people"],
    }
