"""Train the paper's convlstm model.

  python -m seg_jax.train --config configs/convlstm.py --workdir runs/convlstm
  python -m seg_jax.train --config configs/convlstm.py:tiny --workdir /tmp/convlstm_tiny   # seconds on CPU
"""
from seg_jax.configs import apply_variant, get_default_config


def get_config(arg=None):
    config = get_default_config()
    config.model.name = "convlstm"
    config.batch_size = 4               # 4 clips x T frames per step
    return apply_variant(config, arg)
