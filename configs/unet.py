"""Train the paper's unet model.

  python -m seg_jax.train --config configs/unet.py --workdir runs/unet
  python -m seg_jax.train --config configs/unet.py:tiny --workdir /tmp/unet_tiny   # seconds on CPU
"""
from seg_jax.configs import apply_variant, get_default_config


def get_config(arg=None):
    config = get_default_config()
    config.model.name = "unet"
    return apply_variant(config, arg)
