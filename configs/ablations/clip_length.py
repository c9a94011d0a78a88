"""Ablation: clip length T of the ConvLSTM model (T in {1, 2, 4, 8}).

  python -m seg_jax.ablations --sweep configs/ablations/clip_length.py --out results/ablations/clip_length
  python -m seg_jax.ablations --sweep configs/ablations/clip_length.py --out /tmp/clip --tiny

Evaluated on DAVIS (real video clips, scanned with the clip length of the run) and portraits (T=1 stills).
"""

from seg_jax.configs.default import DEFAULT_DATA_ROOT as DATA


def get_sweep(arg=None):
    lengths = [int(t) for t in arg.split(",")] if arg else [1, 2, 4, 8]
    return {
        "title": "clip length T (convlstm)",
        "base": "configs/convlstm.py",
        "base_overrides": {"data.root": DATA, "data.image_size": (160, 160), "num_steps": 2000,
                           "eval_every": 250, "checkpoint_every": 250},
        # same number of frames per step: batch x T = 16
        "runs": {f"T{t}": {"data.clip_length": t, "batch_size": max(16 // t, 1)} for t in lengths},
        "eval_split": "val",
        "eval_subsets": ["davis", "portraits"],
    }
