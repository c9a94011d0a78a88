"""Ablation: the paper's augmentations on vs off (mobilenet).

  python -m seg_jax.ablations --sweep configs/ablations/augment.py --out results/ablations/augment
"""

from seg_jax.configs.default import DEFAULT_DATA_ROOT as DATA


def get_sweep(arg=None):
    return {
        "title": "augmentations on/off (mobilenet)",
        "base": "configs/mobilenet.py",
        "base_overrides": {"data.root": DATA, "num_steps": 4000, "eval_every": 500, "checkpoint_every": 500},
        "runs": {"augment": {"data.augment": True}, "no_augment": {"data.augment": False}},
        "eval_split": "val",
        "eval_subsets": ["portraits", "people"],
    }
