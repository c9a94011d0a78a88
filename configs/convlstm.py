"""Train the paper's convlstm model.

  python -m seg_jax.train --config configs/convlstm.py --workdir runs/convlstm
  python -m seg_jax.train --config configs/convlstm.py:paper --workdir runs/convlstm_paper
  python -m seg_jax.train --config configs/convlstm.py:tiny --workdir /tmp/convlstm_tiny   # seconds on CPU

The plain config trains every weight of model 3 on T = ``data.clip_length`` = 4 frame clips (composite
pseudo-video and DAVIS train clips), each from a zero state. ``:paper`` is the paper's own protocol for its model 3:
T = 1, i.e. single composited stills and single DAVIS frames, no temporal loss, the paper's cell layout (not
residual), so the cells never see a second frame in training. To combine T = 1 with another variant, add
``--config.data.clip_length=1`` to it. The cells-only recipe that trains on long streams of cached features is
``configs/convlstm_cells.py`` (run by ``python -m research.train_cells``).
"""
from seg_jax.configs import apply_variant, get_default_config


def get_config(arg=None):
    config = get_default_config()
    config.model.name = "convlstm"
    config.batch_size = 4               # 4 clips x T frames per step
    if arg == "paper":
        config.data.clip_length = 1     # the paper trained model 3 on stills
        config.temporal_loss_weight = 0.0
        config.model.residual_cells = False
        return config
    return apply_variant(config, arg)
