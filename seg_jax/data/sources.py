"""Which random-access sources a config trains and evaluates on.

``config.data.source``:
- ``synthetic``: :class:`~seg_jax.data.synthetic.SyntheticSource` (train seed 0; val / test are disjoint seeds);
- ``folder``: ``config.data.folder`` (``images/`` + ``masks/`` or the Kaggle layout), 80:10:10 or split files;
- ``mixed``: the real data under ``config.data.root`` (see :mod:`seg_jax.data.real`); with no ``data.root`` it
  means ``public`` (:func:`resolve_source`), so a run with nothing configured trains on the public data;
- ``public``: the public datasets (COCO, DAVIS 2017, YouTube-VIS, Kaggle) prepared in the TFDS data dir by
  ``python -m seg_jax.data.prepare``, mixed by ``config.data.public_weights`` (:mod:`seg_jax.data.public`);

Temporal models get clips (T = ``config.data.clip_length``); still-image sources are turned into clips by
:mod:`seg_jax.data.pseudo_video` for training, and into T repeated frames for evaluation.
"""
from __future__ import annotations

from seg_jax.data import folder, real, synthetic
from seg_jax.data.combinators import RepeatFrames
from seg_jax.data.public import sources as public

SYNTHETIC_SEEDS = {"train": 0, "val": 1, "test": 2}


def _synthetic_count(config, split: str) -> int:
    n = int(config.data.synthetic_size)
    if split == "train":
        return n
    frac = config.data.val_fraction if split == "val" else config.data.test_fraction
    return max(2, int(round(n * frac)))


def _synthetic(config, split: str, temporal: bool) -> synthetic.SyntheticSource:
    return synthetic.SyntheticSource(_synthetic_count(config, split), tuple(config.data.image_size),
                                     seed=SYNTHETIC_SEEDS[split],
                                     clip_length=int(config.data.clip_length) if temporal else 0)


def _folder_root(config) -> str:
    root = config.data.folder or config.data.root
    if not root:
        raise ValueError("data.source='folder' needs --config.data.folder=<dir with images/ and masks/>")
    return root


def _folder(config, split: str) -> folder.PairSource:
    pairs = folder.split_pairs(_folder_root(config), split, config.data.val_fraction, config.data.test_fraction)
    return folder.PairSource(pairs, name=f"folder:{split}")


def _train_file_pairs(config, temporal: bool):
    src = _folder(config, "train")
    if temporal:
        from seg_jax.data import pseudo_video
        src = pseudo_video.PseudoVideoFromPairs(src, int(config.data.clip_length), tuple(config.data.image_size),
                                                seed=0)
    return [(src, 1.0)]


def _eval_file_pairs(config, split: str, temporal: bool):
    src = _folder(config, split)
    return RepeatFrames(src, config.data.clip_length) if temporal else src


def _train_mixed(config, temporal: bool):
    return real.train_sources(config, temporal)


def _eval_mixed(config, split: str, temporal: bool, subset: str | None):
    return real.eval_source(config, split, subset, temporal)


def _train_public(config, temporal: bool):
    return public.train_sources(config, temporal)


def _eval_public(config, split: str, temporal: bool):
    return public.eval_source(config, split, temporal)


# config.data.source -> (train: (config, temporal) -> [(source, weight)],
#                        eval: (config, split, temporal) -> source); 'mixed' also takes a subset.
SOURCE_KINDS = {
    "mixed": (_train_mixed, _eval_mixed),
    "folder": (_train_file_pairs, _eval_file_pairs),
    "synthetic": (lambda c, t: [(_synthetic(c, "train", t), 1.0)], _synthetic),
    "public": (_train_public, _eval_public),
}
KINDS = tuple(SOURCE_KINDS)


def resolve_source(config) -> str:
    """``data.source`` 'mixed' with no ``data.root`` -> 'public' (set in ``config``); returns the source."""
    if config.data.source == "mixed" and not config.data.root:
        config.data.source = "public"
    return config.data.source


def _kind(config) -> tuple:
    resolve_source(config)
    try:
        return SOURCE_KINDS[config.data.source]
    except KeyError:
        raise ValueError(f"unknown data.source {config.data.source!r}; choose {KINDS}") from None


def train_sources(config, temporal: bool) -> list[tuple[object, float]]:
    """-> [(source, weight)] to mix for training."""
    return _kind(config)[0](config, temporal)


def eval_source(config, split: str, subset: str | None, temporal: bool):
    """The random-access source of a whole evaluation split (one subset, or all of them concatenated)."""
    if split not in ("val", "test", "train"):
        raise ValueError(f"unknown split {split!r}; choose val | test")
    make = _kind(config)[1]
    if config.data.source == "mixed":
        return make(config, split, temporal, subset)
    if subset not in (None, config.data.source):
        raise ValueError(f"subset {subset!r} needs data.source='mixed'; source {config.data.source!r} has no "
                         "subsets")
    return make(config, split, temporal)
