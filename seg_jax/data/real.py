"""The real data under ``config.data.root`` (``../shared/data``; see its README) and its FIXED held-out split.

Subsets and what is held out (never trained on, not even as compositing foregrounds):

============  =======================================  ==========================================
subset        test                                     val
============  =======================================  ==========================================
portraits     20 pairs (``HELDOUT['portraits']``)      10 pairs
people        40 pairs (``HELDOUT['people']``)         20 pairs
davis         sequences ``dance-twirl``, ``hockey``     sequence ``rollerblade``
============  =======================================  ==========================================

The still-image stems were chosen once as the first 20+10 (40+20) stems in SHA-1 order of the stem
(:func:`seg_jax.data.folder.hash_split`) and are written out below so they never move. DAVIS test/val sequences
were picked by hand so that near-duplicate pairs (breakdance / breakdance-flare, kite-surf / kite-walk) stay
together on the training side. Training uses everything else:

- still images (models 1, 2): ``data.weights.composite`` composites (train portraits + train people + all
  cutouts pasted on all backgrounds) mixed with ``data.weights.real`` real train pairs (portraits + people);
- clips (model 3): ``data.weights.pseudo_video`` composite pseudo-video clips mixed with ``data.weights.davis``
  real DAVIS clips of the 6 training sequences.

Evaluation (:func:`eval_source`): portraits / people pairs; DAVIS frames (per-frame models) or covering
clips (temporal models; see :mod:`seg_jax.data.clips`); still pairs become T repeated frames for temporal
models. :func:`heldout_files` lists the original full-resolution files of a split.
"""
from __future__ import annotations

import os

from seg_jax.data import clips, composite, folder, io, sources

SUBSETS = ("portraits", "people", "davis")

HELDOUT = {
    "portraits": {
        "test": ["train_00009", "train_00010", "train_00025", "train_00028", "train_00031", "train_00032",
                 "train_00036", "train_00037", "train_00040", "train_00045", "train_00051", "train_00053",
                 "train_00059", "train_00066", "train_00072", "train_00077", "train_00087", "train_00091",
                 "train_00094", "train_00097"],
        "val": ["train_00004", "train_00022", "train_00038", "train_00043", "train_00044", "train_00048",
                "train_00073", "train_00074", "train_00083", "train_00095"],
    },
    "people": {
        "test": ["4", "9", "11", "16", "17", "22", "28", "43", "74", "81", "85", "89", "93", "108", "118", "122",
                 "125", "126", "127", "150", "154", "157", "161", "175", "192", "193", "202", "204", "210", "211",
                 "213", "216", "222", "234", "235", "244", "260", "262", "263", "279"],
        "val": ["30", "49", "65", "90", "94", "100", "130", "142", "169", "177", "178", "191", "194", "199", "230",
                "255", "265", "270", "282", "283"],
    },
    "davis": {"test": ["dance-twirl", "hockey"], "val": ["rollerblade"]},
}


def _dir(root: str, name: str) -> str:
    path = os.path.join(root, name)
    if not os.path.isdir(path):
        raise io.BadInputError(f"{path}: folder missing; data.root must hold portraits/, people/, cutouts/, "
                               "backgrounds/ and davis/ (see ../shared/data/README.md)")
    return path


def pairs(root: str, subset: str, split: str) -> list[folder.Pair]:
    """Still pairs of 'portraits' | 'people' for split 'train' | 'val' | 'test' (train = all minus held out)."""
    listed = folder.list_pairs(_dir(root, subset))
    held = HELDOUT[subset]
    if split == "train":
        out = {*held["val"], *held["test"]}
        return [p for p in listed if p.stem not in out]
    by_stem = {p.stem: p for p in listed}
    missing = [s for s in held[split] if s not in by_stem]
    if missing:
        raise io.BadInputError(f"{os.path.join(root, subset)}: held-out {split} stems missing ({missing[:3]}...); "
                               "data.root is not the expected real data")
    return [by_stem[s] for s in held[split]]


def davis_sequences(root: str, split: str) -> list[clips.Sequence]:
    """DAVIS sequences of a split (train = the 6 sequences not held out)."""
    d = _dir(root, "davis")
    if split == "train":
        held = {*HELDOUT["davis"]["val"], *HELDOUT["davis"]["test"]}
        return [s for s in clips.list_davis(d) if s.name not in held]
    return clips.list_davis(d, HELDOUT["davis"][split])


def foregrounds(root: str) -> list[composite.Foreground]:
    """Compositing foregrounds: train portraits, train people (image + mask) and every RGBA cutout."""
    fgs = [composite.Foreground(p.image_path, p.mask_path)
           for sub in ("portraits", "people") for p in pairs(root, sub, "train")]
    cut = _dir(root, "cutouts")
    fgs += [composite.Foreground(os.path.join(cut, n)) for n in sorted(os.listdir(cut))
            if n.lower().endswith(".png") and io.check_file(os.path.join(cut, n)) is None]
    return fgs


def backgrounds(root: str) -> list[str]:
    bg = _dir(root, "backgrounds")
    return [os.path.join(bg, n) for n in sorted(os.listdir(bg))
            if n.lower().endswith(io.IMAGE_EXTENSIONS) and io.check_file(os.path.join(bg, n)) is None]


def _root(config) -> str:
    if not config.data.root:
        raise ValueError("data.source='mixed' needs --config.data.root=<real data root, e.g. ../shared/data>")
    return config.data.root


def train_sources(config, temporal: bool) -> list[tuple[object, float]]:
    """[(source, weight)] for training on the real data (weights from ``config.data.weights``)."""
    root, w = _root(config), config.data.weights
    hw, t = tuple(config.data.image_size), int(config.data.clip_length)
    out = []
    if temporal:
        if w.pseudo_video > 0:
            out.append((composite.CompositeSource(foregrounds(root), backgrounds(root), hw,
                                                  int(config.data.composite_size), seed=0, clip_length=t),
                        w.pseudo_video))
        if w.davis > 0:
            out.append((clips.ClipSource(davis_sequences(root, "train"), t, int(config.data.clip_stride)), w.davis))
    else:
        if w.composite > 0:
            out.append((composite.CompositeSource(foregrounds(root), backgrounds(root), hw,
                                                  int(config.data.composite_size), seed=0), w.composite))
        if w.real > 0:
            real = sources.ConcatSource([(s, folder.PairSource(pairs(root, s, "train"), s))
                                         for s in ("portraits", "people")])
            out.append((real, w.real))
    if not out:
        raise ValueError("all data.weights for this model kind are 0; give at least one source a weight > 0")
    return out


def subset_source(config, split: str, subset: str, temporal: bool):
    """Evaluation source of one subset (native resolution; the pipeline resizes)."""
    root, t = _root(config), int(config.data.clip_length)
    if subset == "davis":
        seqs = davis_sequences(root, split)
        return clips.ClipSource(seqs, t, int(config.data.clip_stride), cover=True) if temporal else clips.FrameSource(seqs)
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {SUBSETS}")
    src = folder.PairSource(pairs(root, subset, split), subset)
    return sources.RepeatFrames(src, t) if temporal else src


def eval_source(config, split: str, subset: str | None, temporal: bool):
    """One subset, or all subsets of the split concatenated in the order of :data:`SUBSETS`."""
    if split not in ("val", "test"):
        raise ValueError(f"unknown split {split!r} for the real data; choose val | test")
    if subset is not None:
        return subset_source(config, split, subset, temporal)
    return sources.ConcatSource([(s, subset_source(config, split, s, temporal)) for s in SUBSETS])


def heldout_files(root: str, split: str = "test", subset: str = "portraits") -> list[dict]:
    """Original full-resolution files of a held-out subset, in evaluation order.

    -> [{'name': str, 'image_path': str, 'mask_path': str, 'sequence': str}] ('sequence' is '' for stills).
    Load one with ``seg_jax.data.io.read_pair(e['image_path'], e['mask_path'])`` (mask resized to the image
    with nearest-neighbour where only its size differs).
    """
    if subset == "davis":
        return [{"name": f"{s.name}/{os.path.basename(f)}", "image_path": f, "mask_path": m, "sequence": s.name}
                for s in davis_sequences(root, split) for f, m in zip(s.frames, s.masks)]
    return [{"name": p.stem, "image_path": p.image_path, "mask_path": p.mask_path, "sequence": ""}
            for p in pairs(root, subset, split)]
