"""Train the paper's mobilenet model.

  python -m seg_jax.train --config configs/mobilenet.py --workdir runs/mobilenet
  python -m seg_jax.train --config configs/mobilenet.py:tiny --workdir /tmp/mobilenet_tiny   # seconds on CPU
"""
from seg_jax.configs import apply_variant, get_default_config


def get_config(arg=None):
    config = get_default_config()
    config.model.name = "mobilenet"
    return apply_variant(config, arg)
