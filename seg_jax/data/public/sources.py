"""``data.source = 'public'``: the public datasets prepared in the TFDS data dir, mixed by ``data.public_weights``.

Sources (key of ``data.public_weights`` -> what it gives):

- ``coco``: COCO people (crowds ignored), ``coco_negatives``: COCO photos without people (empty masks);
- ``kaggle``: the paper's Kaggle set (seg_jax's ``person_segmentation`` builder);
- ``davis17``: DAVIS 2017 person tracks, ``youtube_vis``: YouTube-VIS person tracks.

Still-image models see stills and video frames; temporal models see real clips from the videos and pseudo-video
clips (:mod:`seg_jax.data.pseudo_video`) made from the stills. A weighted dataset that is not prepared is left out
with a warning naming its prepare command; a prepared one that is broken (another builder version, half-built)
stops the run with one line; no prepared dataset at all stops it with one line naming the command and the disk.

Validation: each prepared dataset's val split (COCO val people and negatives, DAVIS 2017 val, Kaggle val;
YouTube-VIS has no labelled val split), at most ``data.public_val_examples`` evenly spaced examples each.
"""
from __future__ import annotations

import logging

import numpy as np

from seg_jax.data import pseudo_video
from seg_jax.data.combinators import ConcatSource, RepeatFrames
from seg_jax.data.public import store, youtube_vis

# weight key -> the prepared dataset it reads
DATASET_OF = {"coco": "coco", "coco_negatives": "coco", "kaggle": "kaggle", "davis17": "davis17",
              "youtube_vis": "youtube_vis"}
VIDEO = ("davis17", "youtube_vis")
FIRST = "davis17"   # the smallest download: what a stranger can try first


def weights(config) -> dict[str, float]:
    """``data.public_weights`` checked: every value >= 0 and at least one > 0 (else a one-line error)."""
    given = dict(config.data.public_weights)
    unknown = sorted(set(given) - set(DATASET_OF))
    if unknown:
        raise store.PublicDataError(f"data.public_weights has unknown sources {unknown}; choose from "
                                    f"{', '.join(DATASET_OF)}")
    out = {}
    for key, value in given.items():
        w = float(value)
        if not np.isfinite(w) or w < 0:
            raise store.PublicDataError(f"data.public_weights.{key} = {value}; mixing weights must be >= 0")
        out[key] = w
    if not any(out.values()):
        raise store.PublicDataError("data.public_weights are all 0; give at least one source a weight > 0, e.g. "
                                    "--config.data.public_weights.coco=1")
    return out


def _no_data_message(directory: str, wanted: list[str]) -> str:
    """One line: where nothing is prepared, the quickest prepare command first, then the others with their disk."""
    auto = [n for n in wanted if not store.spec(n)["manual"]]
    first = (auto or wanted)[0]
    others = ", ".join(f"{n} (~{store.spec(n)['disk_gb']} GB{', manual download' if store.spec(n)['manual'] else ''})"
                       for n in wanted if n != first)
    return (f"no public training data prepared in {directory}: run `{store.prepare_command(first, directory)}` "
            f"(needs ~{store.spec(first)['disk_gb']} GB free)" + (f"; also usable: {others}" if others else "")
            + "; or train on a folder: --config.data.root=<dir>")


def ready(config, warn: bool = True) -> dict[str, object]:
    """-> {dataset: its ready version folder} for the datasets that the weights use and that are prepared.

    Not prepared: left out (a warning names its prepare command). Prepared but broken: :class:`PublicDataError`.
    None ready: :class:`PublicDataError` naming the prepare commands and the disk they need."""
    directory = store.data_dir(config)
    wanted = sorted({DATASET_OF[k] for k, w in weights(config).items() if w > 0},
                    key=lambda n: store.spec(n)["disk_gb"])
    out, absent = {}, []
    for name in wanted:
        try:
            out[name] = store.check(directory, name, need_index=name != "kaggle")
        except store.PublicDataError as e:
            if store.dataset_root(directory, name).exists():
                raise          # there but unusable: say so, never train around it
            absent.append(str(e))
    if not out:
        raise store.PublicDataError(_no_data_message(directory, wanted))
    for message in absent if warn else ():
        logging.warning("public data: %s (left out of the mix)", message)
    return out


def _limit(src, n: int):
    """At most ``n`` evenly spaced examples of ``src`` (all when n <= 0 or the source is smaller)."""
    if n <= 0 or len(src) <= n:
        return src
    return _Subset(src, [int(k) for k in np.linspace(0, len(src) - 1, n)])


class _Subset:
    def __init__(self, source, indices):
        self.source, self.indices = source, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> dict:
        return self.source[self.indices[index]]

    def __repr__(self) -> str:
        return f"Subset({self.source!r}, n={len(self)})"


def _still(name: str, key: str, vdir, split: str):
    if name == "coco":
        from seg_jax.data.public import coco
        kind = {"coco": "people", "coco_negatives": "negatives"}.get(key, "all")
        return coco.CocoPeople(vdir, split, kind)
    if name == "kaggle":
        from seg_jax.data import tfds_person_segmentation as tps
        return tps.data_source(str(vdir.parent.parent), store.spec("kaggle")["splits"][split])
    if name == "davis17":
        from seg_jax.data.public import davis17
        return davis17.DavisFrames(vdir, split)
    return youtube_vis.YoutubeVisFrames(vdir, split)


def _clips(name: str, vdir, split: str, config, cover: bool):
    t, stride = int(config.data.clip_length), int(config.data.clip_stride)
    if name == "davis17":
        from seg_jax.data.public import davis17
        return davis17.DavisClips(vdir, split, t, stride, cover=cover)
    return youtube_vis.YoutubeVisClips(vdir, split, t, stride, cover=cover)


def train_sources(config, temporal: bool) -> list[tuple[object, float]]:
    """[(source, weight)] of the prepared public datasets (module docstring)."""
    have = ready(config)
    out = []
    for key, w in weights(config).items():
        name = DATASET_OF[key]
        if w <= 0 or name not in have:
            continue
        if temporal and name in VIDEO:
            src = _clips(name, have[name], "train", config, cover=False)
        else:
            src = _still(name, key, have[name], "train")
            if temporal:
                src = pseudo_video.PseudoVideoFromPairs(src, int(config.data.clip_length),
                                                        tuple(config.data.image_size), seed=0)
        if len(src):
            out.append((src, w))
    if not out:
        raise store.PublicDataError(_no_data_message(store.data_dir(config), sorted(have)))
    return out


def eval_source(config, split: str, temporal: bool):
    """The val (or test = val: the public sets have no labelled test split) examples of every prepared dataset."""
    split = "val"
    have = ready(config, warn=False)
    limit = int(config.data.public_val_examples)
    parts = []
    for name, vdir in have.items():
        if "val" not in store.spec(name)["splits"]:
            continue
        if temporal and name in VIDEO:
            src = _clips(name, vdir, "val", config, cover=True)
        else:
            src = _still(name, "all", vdir, "val")
            src = RepeatFrames(src, int(config.data.clip_length)) if temporal else src
        parts.append((name, _limit(src, limit)))
    if not parts:
        raise store.PublicDataError(f"none of the prepared public datasets ({', '.join(have)}) has a val split; "
                                    f"prepare one that has: `{store.prepare_command(FIRST)}`")
    return ConcatSource(parts)
