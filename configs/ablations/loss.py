"""Ablation: the paper's Dice loss vs BCE + Dice, MobileNetV3 U-Net, trained from scratch.

  python -m seg_jax.ablations --sweep configs/ablations/loss.py --out runs/ablations/loss
  python -m seg_jax.ablations --sweep configs/ablations/loss.py --out /tmp/loss --tiny        # smoke test

Reduced scale for a shared 2-core CPU: 128x128 inputs, 150 steps of batch 8 per run, from scratch (no
ImageNet weights), learning rate 1e-3 (the ``cpu`` recipe), encoder BatchNorm momentum 0.9, real data under
``SEG_JAX_DATA`` (default ``../shared/data`` from the repository root), evaluated on the real held-out val split per
folder.
"""

from seg_jax.configs.default import DEFAULT_DATA_ROOT as DATA


def get_sweep(arg=None):
    steps = int(arg) if arg else 150
    return {
        "title": f"loss: dice vs bce_dice (mobilenet, 128x128, {steps} steps, CPU, reduced scale)",
        "base": "configs/mobilenet.py:cpu",
        "base_overrides": {
            "data.source": "mixed",
            "data.root": DATA,
            "data.image_size": (128, 128),
            # BatchNorm running statistics must converge within ~150 steps: with the Keras encoder momentum
            # (0.999) they do not, and eval-mode predictions collapse to background for both losses
            # (results/ablations/loss_encoder_bn0999). 0.9 here; the decoder keeps Keras' 0.99.
            "model.encoder_bn_momentum": 0.9,
            "num_steps": steps,
            "eval_every": max(steps // 3, 1),
            "checkpoint_every": max(steps // 3, 1),
            "log_every": 10,
            "max_eval_examples": 48,          # the in-training val passes; the final evaluation uses all of val
            "plateau_patience": 0,
            "early_stopping_patience": 0,
        },
        "runs": {
            "dice": {"loss": "dice"},
            "bce_dice": {"loss": "bce_dice"},
        },
        "eval_split": "val",
        "eval_subsets": ["portraits", "people"],
        "notes": (f"Reduced scale, on CPU: MobileNetV3 U-Net from scratch (no ImageNet weights), 128x128, {steps} "
                  "steps of batch 8 (lr 1e-3, the `cpu` recipe, encoder BatchNorm momentum 0.9 so the running "
                  "statistics settle in so few steps), real data (composites + real pairs). The paper "
                  "trains 20k steps at 256x256 from ImageNet weights; these numbers only compare the two losses "
                  "early in training, with one seed."),
    }
