"""Default training config (the paper's recipe), shared by ``configs/*.py``.

Every field can be overridden on the command line, e.g. ``--config.batch_size=16`` or
``--config.data.image_size=160,288``. Schedules are data: ``lr_boundaries`` (steps) and ``lr_scales``
(multipliers applied at each boundary, as in ``optax.piecewise_constant_schedule``).
"""
from __future__ import annotations

import ml_collections


def get_default_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.seed = 0

    c.model = ml_collections.ConfigDict()
    c.model.name = "mobilenet"          # unet | mobilenet | convlstm
    c.model.dtype = "float32"           # compute dtype: float32 | bfloat16 (params stay float32)
    c.model.depthwise_impl = "auto"     # auto | shift_add | grouped (mobilenet models only)
    c.model.gate_activation = "hard_sigmoid"  # convlstm only: tf.keras 2.x default, as in the paper
    c.model.encoder_bn_momentum = 0.999  # MobileNetV3 BatchNorm momentum (Keras); 0.99 for short runs

    c.data = ml_collections.ConfigDict()
    c.data.source = "mixed"             # mixed (real data under root) | folder | synthetic (see seg_jax.data)
    c.data.root = ""                    # root of the real data (e.g. ../shared/data)
    c.data.folder = ""                  # an images/ + masks/ folder (source 'folder')
    c.data.image_size = (256, 256)      # (height, width), multiples of 32
    c.data.clip_length = 4              # T for temporal models
    c.data.val_fraction = 0.1
    c.data.test_fraction = 0.1
    c.data.num_workers = 0              # Grain worker processes (0 = in-process)
    c.data.synthetic_size = 64          # number of synthetic examples (source 'synthetic')
    c.data.augment = True               # the paper's augmentations (flip, gray, channel shuffle, dropout, rotate)
    c.data.soft_targets = True          # train on soft alpha mattes where the data has them
    c.data.read_threads = 2             # Grain reader threads per process (decoding releases the GIL)
    c.data.weights = ml_collections.ConfigDict({   # mixing weights of source 'mixed' (normalised per kind)
        "composite": 0.6, "real": 0.4,             # still images: composites / real portraits+people pairs
        "pseudo_video": 0.5, "davis": 0.5,         # clips: composite pseudo-video / real DAVIS clips
    })
    # source 'mixed': each still subset's share of the real pairs (normalised; 0 leaves it out) and of the
    # compositing foregrounds (cutouts too). Selfies and portraits are the video-call domain; the soft
    # mattes (portraits, cutouts) carry hair detail that the softened binary masks lack.
    c.data.real_weights = ml_collections.ConfigDict({
        "portraits": 0.15, "selfies": 0.4, "people": 0.15, "fullbody": 0.3})
    c.data.foreground_weights = ml_collections.ConfigDict({
        "portraits": 0.2, "selfies": 0.3, "people": 0.15, "fullbody": 0.2, "cutouts": 0.15})
    c.data.composite_size = 100_000     # virtual length of the composite sources (one "epoch")
    c.data.clip_stride = 1              # frame step inside a real video clip
    c.data.video_folder = ""            # DAVIS-style or Conference-dataset folder (source 'davis' | 'conference')
    c.data.tfds_dir = ""                # TFDS data_dir of a built person_segmentation (source 'tfds')
    # 'grain': decode and augment on host cores (every source, the paper's augmentations); 'device': decode the
    # train split once, augment on the accelerator (seg_jax.data.device_pipeline; stills and pseudo-video)
    c.data.pipeline = "grain"

    c.batch_size = 8
    c.eval_batch_size = 8
    c.num_steps = 20_000
    c.eval_every = 500                  # steps between validation passes ("epochs" for plateau/early stop)
    c.log_every = 20
    c.checkpoint_every = 500
    c.max_eval_examples = 0             # 0 = the whole validation split

    c.loss = "dice"                     # dice (the paper) | bce_dice
    c.dice_smooth = 1.0
    # temporal models: weight of losses.temporal_consistency_loss (predicted vs true frame-to-frame alpha change)
    # added to the segmentation loss; 0 = the paper's loss alone
    c.temporal_loss_weight = 0.0
    c.learning_rate = 1e-4
    c.lr_boundaries = (8_000, 12_000, 16_000)   # steps at which the rate is multiplied by lr_scales
    c.lr_scales = (0.1, 0.1, 0.1)               # 1e-4 -> 1e-5 -> 1e-6 -> 1e-7
    c.min_learning_rate = 1e-7
    c.warmup_steps = 0                  # linear learning-rate warm-up from 0 over this many steps (0 = off)
    c.plateau_patience = 4              # evals without val-loss improvement before lr x plateau_factor (0 = off)
    c.plateau_factor = 0.1
    c.early_stopping_patience = 10      # evals without improvement before stopping (0 = off)
    c.weight_decay = 0.0
    c.grad_clip_norm = 0.0              # 0 = off

    c.max_train_seconds = 0.0           # stop (evaluate + checkpoint) after this many seconds of a session; 0 = off
    c.init_from = ""                    # weights dir/checkpoint to start from when the workdir is empty
    # convlstm initialised from a mobilenet: its cells start as near pass-throughs with this candidate-gate gain
    # (seg_jax/convert/convlstm_warm_start.py); 0 = random cells
    c.convlstm_warm_start = 0.1
    c.keep_checkpoints = 1              # latest checkpoints kept besides the best
    return c


def apply_variant(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Apply a named variant given after ':' in ``--config file.py:variant``.

    ``tiny``: a few steps on synthetic 64x64 data, for tests, Colab and CPU smoke runs.
    ``cpu``: the shorter from-scratch schedule used to train the shipped weights on a 2-core CPU.
    ``gpu``: the one-GPU fine-tuning schedule of ``launch/gpu_train_ship.sh`` (256x256, batch 32 / 8 clips).
    ``cpu-long``: hours in the background on a 2-core CPU, continued from the shipped weights (see below).
    ``cpu-short``: about one hour on a 2-core CPU for a model too big for ``cpu`` (the 31M-parameter baseline
    U-Net takes ~6 s per batch-4 step at 128x128 there): 650 steps, bounded by ``max_train_seconds``.
    """
    if not arg:
        return config
    if arg == "tiny":
        config.data.source = "synthetic"
        config.data.image_size = (64, 64)
        config.data.clip_length = 2
        config.data.synthetic_size = 12
        config.data.augment = False
        config.batch_size = 2
        config.eval_batch_size = 4
        config.num_steps = 4
        config.eval_every = 2
        config.log_every = 1
        config.checkpoint_every = 2
        config.learning_rate = 2e-3
        config.lr_boundaries = (1000,)
        config.lr_scales = (0.1,)
        return config
    if arg == "cpu":
        # The recipe used for the shipped weights on a 2-core CPU (no ImageNet weights, short budget): from
        # scratch, a 10x higher starting rate than the paper's 1e-4, BCE + Dice, 128x128 (the run is resumed
        # at a larger size for its last steps, see results/README), decays at 75% and 90%.
        config.loss = "bce_dice"
        config.model.encoder_bn_momentum = 0.99
        config.learning_rate = 1e-3
        config.data.image_size = (128, 128)
        config.num_steps = 4000
        config.lr_boundaries = (3000, 3600)
        config.lr_scales = (0.1, 0.1)
        config.eval_every = 300
        config.checkpoint_every = 300
        config.plateau_patience = 4
        config.early_stopping_patience = 10
        return config
    if arg == "gpu":
        # One GPU, minutes not hours (launch/gpu_train_ship.sh): 256x256, larger batches, many loader workers,
        # warm-started from the shipped weights by the launcher; config.max_train_seconds bounds the session.
        temporal = config.model.name == "convlstm"
        config.loss = "bce_dice"
        config.model.encoder_bn_momentum = 0.99
        config.learning_rate = 2e-4 if temporal else 5e-4
        config.temporal_loss_weight = 1.0 if temporal else 0.0
        config.warmup_steps = 300
        config.data.image_size = (256, 256)
        config.data.num_workers = 12
        config.batch_size = 8 if temporal else 32
        config.eval_batch_size = 16 if temporal else 32
        config.num_steps = 3000 if temporal else 6000
        config.lr_boundaries = (2000, 2600) if temporal else (4000, 5200)
        config.lr_scales = (0.1, 0.1)
        config.eval_every = 500
        config.checkpoint_every = 1000
        config.log_every = 50
        return config
    if arg == "cpu-short":
        config.loss = "bce_dice"
        config.learning_rate = 5e-4
        config.warmup_steps = 30
        config.data.image_size = (128, 128)
        config.batch_size = 4
        config.eval_batch_size = 8
        config.num_steps = 650
        config.lr_boundaries = (480, 580)
        config.lr_scales = (0.1, 0.1)
        config.eval_every = 200
        config.checkpoint_every = 200
        config.max_eval_examples = 48
        config.log_every = 10
        config.plateau_patience = 0
        config.early_stopping_patience = 0
        config.max_train_seconds = 3900.0
        return config
    if arg == "cpu-long":
        # Hours in the background on a 2-core CPU, continuing from the shipped weights on every real source:
        # 192x192 (about 2x the examples/s of 256x256; the Segmenter runs the shipped input size), a short
        # warm-up, decays at 70% and 90% of num_steps. Stops (evaluates and checkpoints) at the time budget;
        # the same command resumes it. Set num_steps to what the budget reaches (results/training/).
        config.loss = "bce_dice"
        config.model.encoder_bn_momentum = 0.99
        config.init_from = "seg_jax/weights/" + config.model.name
        config.learning_rate = 3e-4
        config.warmup_steps = 100
        config.data.image_size = (192, 192)
        config.batch_size = 8
        config.eval_batch_size = 16
        config.num_steps = 6000
        config.lr_boundaries = (4200, 5400)
        config.lr_scales = (0.1, 0.1)
        config.eval_every = 500
        config.checkpoint_every = 250
        config.log_every = 25
        config.plateau_patience = 0
        config.early_stopping_patience = 0
        config.max_train_seconds = 6000.0
        if config.model.name == "convlstm":
            # clips of T frames cost T images each: 2 clips x 4 frames per step, the temporal loss on, and a
            # lower rate so the warm-started cells learn without unlearning the per-frame decoder
            config.batch_size = 2
            config.eval_batch_size = 4
            config.data.clip_length = 4
            config.learning_rate = 1e-4
            config.temporal_loss_weight = 1.0
            config.max_eval_examples = 64
        return config
    raise ValueError(f"unknown config variant {arg!r}; known variants: 'tiny', 'cpu', 'gpu', 'cpu-short', "
                     "'cpu-long'")
