"""Default training config (the paper's recipe), shared by ``configs/*.py``.

Every field can be overridden on the command line, e.g. ``--config.batch_size=16`` or
``--config.data.image_size=160,288``. Schedules are data: ``lr_boundaries`` (steps) and ``lr_scales``
(multipliers applied at each boundary, as in ``optax.piecewise_constant_schedule``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import ml_collections

from seg_jax.artifacts.settle import manifest_settle_steps
from seg_jax.models.registry import get_spec

# The real data root of every command's default: $SEG_JAX_DATA, else ../shared/data from the repository root.
DEFAULT_DATA_ROOT = os.environ.get("SEG_JAX_DATA", "../shared/data")


def get_default_config() -> ml_collections.ConfigDict:
    """Every field a run reads, with its default: the model, the data, then the training schedule and bookkeeping."""
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.model = _model_fields()
    c.data = _data_fields()
    _training_fields(c)
    return c


def _model_fields() -> ml_collections.ConfigDict:
    """``config.model``: which network and its numerics."""
    m = ml_collections.ConfigDict()
    m.name = "mobilenet"          # unet | mobilenet | convlstm
    m.dtype = "float32"           # compute dtype: float32 | bfloat16 (params stay float32)
    m.depthwise_impl = "auto"     # auto | shift_add | grouped (mobilenet models only)
    m.gate_activation = "hard_sigmoid"  # convlstm only: tf.keras 2.x default, as in the paper
    m.residual_cells = False      # convlstm only: add each cell's output to its input (not the paper's)
    m.encoder_bn_momentum = 0.999  # MobileNetV3 BatchNorm momentum (Keras); 0.99 for short runs
    return m


def _data_fields() -> ml_collections.ConfigDict:
    """``config.data``: which sources, how they are mixed, sized and augmented."""
    d = ml_collections.ConfigDict()
    # mixed (real data under root; with no root: public) | public (TFDS public datasets) | folder | synthetic
    d.source = "mixed"
    d.root = ""                    # root of the real data (e.g. ../shared/data)
    d.folder = ""                  # an images/ + masks/ folder (source 'folder')
    d.image_size = (256, 256)      # (height, width), multiples of 32
    d.clip_length = 4              # T for temporal models
    d.val_fraction = 0.1
    d.test_fraction = 0.1
    d.num_workers = 0              # Grain worker processes (0 = in-process)
    d.synthetic_size = 64          # number of synthetic examples (source 'synthetic')
    d.augment = True               # the paper's augmentations (flip, gray, channel shuffle, dropout, rotate)
    d.soft_targets = True          # train on soft alpha mattes where the data has them
    d.read_threads = 2             # Grain reader threads per process (decoding releases the GIL)
    d.weights = ml_collections.ConfigDict({   # mixing weights of source 'mixed' (normalised per kind)
        "composite": 0.6, "real": 0.4,             # still images: composites / real portraits+people pairs
        "pseudo_video": 0.5, "davis": 0.5,         # clips: composite pseudo-video / real DAVIS clips
        "negative": 0.15,                          # both: whole person-free photos, empty mask (negatives/)
        "davis17": 0.05,                           # both: DAVIS-2017 person clips (frames for still models)
        "camvid": 0.0,                             # both: CamVid street frames, every pedestrian labelled (camvid/)
    })
    # source 'mixed': hard negatives inside the composites (negatives/ train split): the share of backgrounds
    # that are person-free photos (animals, vehicles, rooms, objects), the probability of pasting a masked
    # non-person object beside the people (mask 0, in front or behind), and the share of composites with
    # such objects and no person at all (all-zero mask)
    d.negatives = ml_collections.ConfigDict({
        "background_share": 0.5, "object_prob": 0.25, "no_person_prob": 0.1})
    # source 'mixed': the teachers' label audit (python -m seg_jax.data.label_audit) as per-pixel ignore maps of
    # the real train pairs: its folder ('' = off), which subsets (comma-separated) and which flagged regions
    # (missed_person: the label says background where both teachers see a person; extra_person: the reverse)
    d.label_audit = ml_collections.ConfigDict({
        "dir": "", "sources": "people", "directions": "missed_person"})
    # source 'mixed': each still subset's share of the real pairs (normalised; 0 leaves it out) and of the
    # compositing foregrounds (cutouts too). Selfies and portraits are the video-call domain; the soft
    # mattes (portraits, cutouts) carry hair detail that the softened binary masks lack.
    d.real_weights = ml_collections.ConfigDict({
        "portraits": 0.15, "selfies": 0.4, "people": 0.15, "fullbody": 0.3})
    d.foreground_weights = ml_collections.ConfigDict({
        "portraits": 0.2, "selfies": 0.3, "people": 0.15, "fullbody": 0.2, "cutouts": 0.15})
    d.composite_size = 100_000     # virtual length of the composite sources (one "epoch")
    d.clip_stride = 1              # frame step inside a real video clip
    # source 'public' (seg_jax.data.public; prepare with python -m seg_jax.data.prepare): the TFDS data dir
    # ('' = $TFDS_DATA_DIR, else ~/tensorflow_datasets), each public source's mixing weight (0 leaves it out; an
    # unprepared one is left out with a warning) and at most this many val examples per dataset
    d.public_dir = ""
    d.public_weights = ml_collections.ConfigDict({
        "coco": 0.45, "coco_negatives": 0.1, "kaggle": 0.15, "davis17": 0.15, "youtube_vis": 0.15})
    d.public_val_examples = 500
    # 'grain': decode and augment on host cores (every source, the paper's augmentations); 'device': decode the
    # train split once, augment on the accelerator (seg_jax.data.device_pipeline; stills and pseudo-video)
    d.pipeline = "grain"
    return d


def _training_fields(c: ml_collections.ConfigDict) -> None:
    """The top-level fields of ``c``: batches, schedule, loss, selection, checkpoints, starting weights."""
    c.batch_size = 8
    c.eval_batch_size = 8
    c.num_steps = 20_000
    c.eval_every = 500                  # steps between validation passes ("epochs" for plateau/early stop)
    c.log_every = 20
    c.checkpoint_every = 500
    c.max_eval_examples = 0             # 0 = the whole validation split (per source with val_selection source_mean)
    # what picks the best checkpoint (and drives plateau / early stopping): 'pooled' = the val dice_loss over
    # the whole split; 'source_mean' = the unweighted mean of each real source's val dice_loss (data.source
    # 'mixed'), so a large source (selfies) cannot hide a loss on a small one (people)
    c.val_selection = "pooled"
    # with 'source_mean': also count the people found (seg_jax.evaluation.person_recall, on the host) and add
    # 1 - the person recall pooled over people, davis and camvid to the mean, so a loss of small people shows
    c.val_person_recall = False
    c.eval_at_start = False             # score the starting weights (step 0) first: a checkpoint must beat them

    c.loss = "dice"                     # dice (the paper) | bce_dice | bce_image_dice (Dice per image)
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
    # > 0: keep an exponential moving average of the parameters with this decay (e.g. 0.998 averages over the
    # last ~500 steps); validation scores the average, the best checkpoint and seg_jax.artifacts.ship use it. 0 = off.
    # Changing it between 0 and > 0 changes the checkpoint layout: such a run continues in a new --workdir.
    c.ema_decay = 0.0
    c.grad_clip_norm = 0.0              # 0 = off

    c.max_train_seconds = 0.0           # stop (evaluate + checkpoint) after this many seconds of a session; 0 = off
    c.init_from = ""                    # weights dir/checkpoint to start from when the workdir is empty
    # convlstm initialised from a mobilenet: its cells start as near pass-throughs with this candidate-gate gain
    # (seg_jax/convert/convlstm_warm_start.py); 0 = random cells
    c.convlstm_warm_start = 0.1
    # comma-separated substrings of parameter paths that train (e.g. 'convlstm': the cells only); '' = all
    c.trainable = ""
    c.freeze_batch_stats = False        # BatchNorm on its running statistics while training (small clip batches)
    # temporal models: extra passes over each clip's first frame before its frames are scored, as a stream settles
    # after a reset (weights whose cells average over time declare it in their manifest; seg_jax.artifacts.ship
    # writes it)
    c.settle_steps = 0
    c.keep_checkpoints = 1              # latest checkpoints kept besides the best


def weights_settle_steps(folder: str) -> int:
    """The ``settle_steps`` a weights folder's manifest declares (0 without one); a relative folder is looked up
    from the working directory, then from the repository root."""
    for path in (Path(folder), Path(__file__).resolve().parents[2] / folder):
        manifest = path / "manifest.json"
        if folder and manifest.is_file():
            try:
                return manifest_settle_steps(json.loads(manifest.read_text()), path)
            except (ValueError, AttributeError):
                return 0  # an unreadable manifest is reported by init_from's own loading, with the fix
    return 0


# Named variants for ``--config file.py:variant``: each a small overlay, a function that edits the default config
# in place; ``temporal`` is True for temporal models (seg_jax.models.registry), which some recipes treat apart.
# Nothing reads the disk until a variant is applied (the long recipes read the starting weights' manifest then).


def _tiny(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """A few steps on synthetic 64x64 data, for tests, Colab and CPU smoke runs."""
    c.data.update(dict(source="synthetic", image_size=(64, 64), clip_length=2, synthetic_size=12, augment=False))
    c.update(dict(batch_size=2, eval_batch_size=4, num_steps=4, eval_every=2, log_every=1, checkpoint_every=2,
                  learning_rate=2e-3, lr_boundaries=(1000,), lr_scales=(0.1,)))


def _cpu(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """The shorter from-scratch schedule that trained the shipped weights on a 2-core CPU (no ImageNet weights,
    short budget): a 10x higher starting rate than the paper's, BCE + Dice, 128x128, decays at 75% and 90%."""
    c.model.encoder_bn_momentum = 0.99
    c.data.image_size = (128, 128)
    c.update(dict(loss="bce_dice", learning_rate=1e-3, num_steps=4000, lr_boundaries=(3000, 3600),
                  lr_scales=(0.1, 0.1), eval_every=300, checkpoint_every=300, plateau_patience=4,
                  early_stopping_patience=10))


def _gpu(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """One GPU, minutes not hours (launch/gpu_train_ship.sh): 256x256, larger batches, many loader workers,
    warm-started from the shipped weights by the launcher; config.max_train_seconds bounds the session."""
    c.model.encoder_bn_momentum = 0.99
    c.data.update(dict(image_size=(256, 256), num_workers=12))
    c.update(dict(loss="bce_dice", learning_rate=5e-4, temporal_loss_weight=0.0, warmup_steps=300, batch_size=32,
                  eval_batch_size=32, num_steps=6000, lr_boundaries=(4000, 5200), lr_scales=(0.1, 0.1),
                  eval_every=500, checkpoint_every=1000, log_every=50))
    if temporal:
        c.update(dict(learning_rate=2e-4, temporal_loss_weight=1.0, batch_size=8, eval_batch_size=16,
                      num_steps=3000, lr_boundaries=(2000, 2600)))


def _from_shipped_mobilenet(c: ml_collections.ConfigDict) -> None:
    """A temporal model starts from the shipped U-Net MobileNet, its cells warm-started as near pass-throughs
    (config.convlstm_warm_start), each clip settling as the weights declare. Not from the shipped ConvLSTM: its
    moving-average cells do not train by gradient (results/training/convlstm_cells_settled_diverged.json)."""
    c.init_from = "seg_jax/weights/mobilenet"
    c.settle_steps = weights_settle_steps(c.init_from)


def _gpu_long(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """Many lent-GPU calls of ~9 minutes each (launch/gpu_long.sh), one long schedule resumed call after call:
    the device data path, 256x256, batch 128, a moving average of the weights, per-source selection; starts
    from the shipped weights."""
    c.model.encoder_bn_momentum = 0.99
    c.data.update(dict(pipeline="device", image_size=(256, 256)))
    c.update(dict(loss="bce_dice", init_from="seg_jax/weights/" + c.model.name, learning_rate=5e-4,
                  warmup_steps=500, ema_decay=0.999, batch_size=128, eval_batch_size=64, num_steps=40_000,
                  lr_boundaries=(28_000, 36_000), lr_scales=(0.1, 0.1), eval_every=2000, checkpoint_every=2000,
                  log_every=100, plateau_patience=0, early_stopping_patience=0, max_train_seconds=540.0,
                  val_selection="source_mean", eval_at_start=True))
    if temporal:
        _from_shipped_mobilenet(c)
        c.data.clip_length = 4
        c.update(dict(batch_size=32, eval_batch_size=16, learning_rate=1e-4, temporal_loss_weight=1.0,
                      num_steps=20_000, lr_boundaries=(14_000, 18_000)))


def _public_mix(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """The public datasets (python -m seg_jax.data.prepare; data.source 'public'): stills from COCO people
    (+15% person-free COCO negatives) and the Kaggle set; temporal models see DAVIS 2017 and YouTube-VIS person
    clips plus COCO pseudo-video and start from the shipped U-Net MobileNet."""
    c.model.encoder_bn_momentum = 0.99
    c.data.update(dict(source="public", image_size=(256, 256)))
    c.data.public_weights.update(dict(coco=0.6, coco_negatives=0.15, kaggle=0.25, davis17=0.0, youtube_vis=0.0))
    c.update(dict(loss="bce_dice", ema_decay=0.999, lr_scales=(0.1, 0.1), plateau_patience=0,
                  early_stopping_patience=0))
    if temporal:
        _from_shipped_mobilenet(c)
        c.data.clip_length = 4
        c.data.public_weights.update(dict(coco=0.25, coco_negatives=0.05, kaggle=0.05, davis17=0.3,
                                          youtube_vis=0.35))
        c.temporal_loss_weight = 1.0


def _public_at_scale(c: ml_collections.ConfigDict, temporal: bool, data: dict, stills: dict, clips: dict) -> None:
    """The public mix with a machine's ``data`` loader settings and schedule: ``stills`` for every model, then
    ``clips`` on top for temporal models."""
    _public_mix(c, temporal)
    c.data.update(data)
    c.update(stills)
    if temporal:
        c.update(clips)


def _public_gpu(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """The public mix on one GPU (reproducing at scale): batch 64 at 256x256, 60k steps."""
    _public_at_scale(
        c, temporal, data=dict(num_workers=12, public_val_examples=1000),
        stills=dict(learning_rate=5e-4, warmup_steps=500, batch_size=64, eval_batch_size=64, num_steps=60_000,
                    lr_boundaries=(45_000, 55_000), eval_every=2000, checkpoint_every=2000, log_every=100),
        clips=dict(batch_size=16, eval_batch_size=16, learning_rate=1e-4, num_steps=30_000,
                   lr_boundaries=(22_000, 27_000)))


def _public_pod(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """The public mix on a multi-host run (launch/README.md): global batch 512 (128 clips), a higher rate with
    a longer warm-up, half the steps."""
    _public_at_scale(
        c, temporal, data=dict(num_workers=8, public_val_examples=2000),
        stills=dict(learning_rate=1e-3, warmup_steps=1000, batch_size=512, eval_batch_size=128, num_steps=30_000,
                    lr_boundaries=(22_000, 27_000), eval_every=1000, checkpoint_every=1000, log_every=50),
        clips=dict(batch_size=128, eval_batch_size=64, learning_rate=3e-4, num_steps=15_000,
                   lr_boundaries=(11_000, 13_500)))


def _cpu_short(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """About one hour on a 2-core CPU for a model too big for ``cpu`` (the baseline U-Net): 650 steps, bounded
    by max_train_seconds."""
    c.data.image_size = (128, 128)
    c.update(dict(loss="bce_dice", learning_rate=5e-4, warmup_steps=30, batch_size=4, eval_batch_size=8,
                  num_steps=650, lr_boundaries=(480, 580), lr_scales=(0.1, 0.1), eval_every=200,
                  checkpoint_every=200, max_eval_examples=48, log_every=10, plateau_patience=0,
                  early_stopping_patience=0, max_train_seconds=3900.0))


def _cpu_long(c: ml_collections.ConfigDict, temporal: bool) -> None:
    """Hours in the background on a 2-core CPU, continuing from the shipped weights on every real source:
    192x192, a short warm-up, decays at 70% and 90% of num_steps; the best checkpoint has the lowest mean of the
    per-source val losses, the starting weights included (scored at step 0); stops (evaluates and checkpoints)
    at the time budget and the same command resumes it. Temporal models: 2 clips x 4 frames a step, the temporal
    loss on, a lower rate, only the ConvLSTM cells training and BatchNorm on the shipped statistics."""
    c.model.encoder_bn_momentum = 0.99
    c.data.image_size = (192, 192)
    c.update(dict(loss="bce_dice", init_from="seg_jax/weights/" + c.model.name, learning_rate=3e-4,
                  warmup_steps=100, batch_size=8, eval_batch_size=16, num_steps=6000, lr_boundaries=(4200, 5400),
                  lr_scales=(0.1, 0.1), eval_every=500, checkpoint_every=250, log_every=25, plateau_patience=0,
                  early_stopping_patience=0, max_train_seconds=6000.0, val_selection="source_mean",
                  eval_at_start=True))
    if temporal:
        _from_shipped_mobilenet(c)
        c.data.clip_length = 4
        c.update(dict(batch_size=2, eval_batch_size=4, learning_rate=2e-4, temporal_loss_weight=5.0,
                      max_eval_examples=64, trainable="convlstm", freeze_batch_stats=True, num_steps=1600,
                      lr_boundaries=(1200, 1450), eval_every=400, checkpoint_every=200, max_train_seconds=5700.0))


VARIANTS: dict[str, Callable[[ml_collections.ConfigDict, bool], None]] = {
    "tiny": _tiny, "cpu": _cpu, "gpu": _gpu, "gpu-long": _gpu_long, "public-gpu": _public_gpu,
    "public-pod": _public_pod, "cpu-short": _cpu_short, "cpu-long": _cpu_long,
}


def apply_variant(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Apply the named variant (a key of ``VARIANTS``) given after ':' in ``--config file.py:variant``."""
    if not arg:
        return config
    if arg not in VARIANTS:
        raise ValueError(f"unknown config variant {arg!r}; known variants: {', '.join(map(repr, VARIANTS))}")
    VARIANTS[arg](config, get_spec(config.model.name).temporal)
    return config
