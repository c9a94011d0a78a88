"""The cells-only recipe for model 3 (issue 47): the U-Net MobileNet frozen, its features cached once per frame,
only ConvLSTM cells 0 and 1 (1/8 and 1/4 resolution, residual form, zero start = the per-frame model exactly)
trained on long streams with the state carried between chunks.

  python -m research.train_cells --config configs/convlstm_cells.py --workdir workdirs/convlstm_cells
  python -m research.train_cells --config configs/convlstm_cells.py:steady --workdir workdirs/convlstm_cells_steady

Variants: ``steady`` adds the temporal term that only counts where the truth is steady (weight 1); ``slow``: a
third of the rate, that term at 0.3, more steps (the lever the first two arms left open); ``tiny``:
a few steps on a few clips (a smoke run). Not the paper's protocol: that is ``configs/convlstm.py:paper``.
"""
import ml_collections

from seg_jax.configs.default import DEFAULT_DATA_ROOT


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.data_root = DEFAULT_DATA_ROOT
    c.mobilenet = "seg_jax/weights/mobilenet"  # the frozen per-frame network
    c.size = (160, 288)                         # what the Segmenter runs 16:9 DAVIS frames at (256x256 budget)
    c.cache = "workdirs/cell_cache"             # feature cache (one folder per part), shared between runs
    c.cells = (0, 1)                            # trained cells; the others stay zero (skipped: identity)
    c.gate_activation = "hard_sigmoid"
    # Training data: real person clips (DAVIS train sequences, the DAVIS-2017 person clips; each also mirrored)
    # and pseudo-video clips composited from the still train pairs (person and background moving apart).
    c.pseudo_clips = 64
    c.pseudo_length = 16
    c.weights = ml_collections.ConfigDict({"davis": 0.35, "davis17": 0.15, "pseudo": 0.5})
    c.reverse = 0.5                             # share of clips played backwards
    c.skip = 0.3                                # share of clips played at frame stride 2
    # Streaming: B lanes x K frames a step, the state carried across steps and reset where a clip starts.
    c.lanes = 4
    c.chunk = 8
    c.num_steps = 140
    c.learning_rate = 5e-4
    c.warmup_steps = 15
    c.final_lr_fraction = 0.05
    c.clip_norm = 1.0
    c.loss = "bce_dice"
    c.steady_weight = 0.0                       # temporal term where the truth is steady (0: none)
    c.log_every = 5
    c.eval_every = 35
    c.checkpoint_every = 20
    c.export = "best"                           # cells written to <workdir>/weights: best (val) | latest (last step)
    c.max_train_seconds = 0.0                   # stop (checkpointed) after this long; the same command resumes (0: off)
    if arg == "steady":
        c.steady_weight = 1.0
    elif arg == "slow":
        c.learning_rate, c.steady_weight, c.num_steps, c.eval_every, c.warmup_steps = 1.5e-4, 0.3, 400, 50, 20
    elif arg == "tiny":
        c.pseudo_clips, c.pseudo_length, c.num_steps, c.lanes, c.chunk = 2, 4, 3, 2, 2
        c.eval_every, c.checkpoint_every, c.log_every, c.warmup_steps = 3, 3, 1, 1
    elif arg:
        raise ValueError(f"unknown variant {arg!r} of configs/convlstm_cells.py; use steady, slow or tiny")
    return c
