"""The real data under ``config.data.root`` (``../shared/data``; see its README) and its FIXED held-out split.

Subsets and what is held out (never trained on, not even as compositing foregrounds):

============  =======================================  ==========================================
subset        test                                     val
============  =======================================  ==========================================
portraits     20 pairs                                 10 pairs
selfies       120 pairs                                60 pairs
people        40 pairs                                 30 pairs (10 with two or more people)
fullbody      80 pairs                                 40 pairs
davis         sequences ``dance-twirl``, ``hockey``     ``rollerblade``, ``breakdance``, ``breakdance-flare``
negatives     ``negatives_splits.json`` (20 %)          ``negatives_splits.json`` (10 %)
camvid        ``camvid_splits.json`` (Seq05VD)          ``camvid_splits.json`` (by sequence)
============  =======================================  ==========================================

The still-image stems were chosen once as the first test+val stems in SHA-1 order of the stem
(:func:`seg_jax.data.folder.hash_split`) and are written out in ``heldout_splits.json`` beside this module so
they never move. DAVIS test/val sequences were picked by hand so that near-duplicate pairs (breakdance /
breakdance-flare, kite-surf / kite-walk) stay together. The val lists were widened once so that val can see a loss
of small, many or crowded people (:mod:`seg_jax.data.heldout_val`, its command writes them; the test lists never
move). Training uses everything else:

- still images (models 1, 2): ``data.weights.composite`` composites (train pairs of every still subset + all
  cutouts pasted on all backgrounds; each subset drawn as a foreground with its share
  ``data.foreground_weights``) mixed with ``data.weights.real`` real train pairs (each subset with its share
  ``data.real_weights``);
- clips (model 3): ``data.weights.pseudo_video`` composite pseudo-video clips mixed with ``data.weights.davis``
  real DAVIS clips of the 6 training sequences;
- both: ``data.weights.negative`` whole person-free photos (:mod:`seg_jax.data.negatives`; empty masks, clips
  by camera motion for model 3) and ``data.weights.davis17`` the two DAVIS-2017 person clips (frames for
  models 1, 2); ``data.negatives`` puts person-free photos behind the composites' people and pastes masked
  non-person objects beside them (mask 0);
- both: ``data.weights.camvid`` the CamVid train sequences' street frames (:mod:`seg_jax.data.camvid`: every
  pedestrian labelled, riders and void in its ``ignore`` map; pseudo-video clips for model 3).

``data.label_audit`` (the policy "every person is person"): the teachers' ignore maps of the subsets that leave
people unlabelled (stills and ``davis17`` frames), so an unlabelled bystander is never taught as background.

Evaluation (:func:`eval_source`): still pairs per subset; DAVIS frames (per-frame models) or covering
clips (temporal models; see :mod:`seg_jax.data.clips`); still pairs become T repeated frames for temporal
models. :func:`heldout_files` lists the original full-resolution files of a split.
"""
from __future__ import annotations

import json
import os

import numpy as np

from seg_jax.data import camvid, clips, composite, folder, io, negatives, pseudo_video
from seg_jax.data.combinators import ConcatSource, RepeatFrames
from seg_jax.data.ignore_masks import AuditedFrameSource, AuditedPairSource

STILL_SUBSETS = ("portraits", "selfies", "people", "fullbody")
SUBSETS = STILL_SUBSETS + ("davis",)
NEGATIVES = "negatives"        # the person-free photos' held-out split: scored for false people, not Dice
CAMVID = camvid.NAME           # street frames, every pedestrian labelled, riders ignored; split by sequence
EVAL_SUBSETS = SUBSETS + (CAMVID, NEGATIVES)   # scored by the evaluator where the root has them
SCORED_SUBSETS = SUBSETS + (CAMVID,)   # the sources training's per-source val selection scores (a missing one skips)
FOREGROUND_SOURCES = STILL_SUBSETS + ("cutouts",)
REQUIRED_FOLDERS = SUBSETS + ("cutouts", "backgrounds")

with open(os.path.join(os.path.dirname(__file__), "heldout_splits.json")) as _f:
    HELDOUT: dict[str, dict[str, list[str]]] = json.load(_f)


def check_root(root: str) -> str:
    """``root`` when it is a folder, else one line naming it (not a complaint about the first subfolder read)."""
    if not os.path.isdir(root):
        raise io.BadInputError(f"data.root {root} {'is not a folder' if os.path.exists(root) else 'does not exist'}; "
                               "pass --config.data.root=<the real data root, e.g. ../shared/data>")
    return root


def _dir(root: str, name: str) -> str:
    path = os.path.join(check_root(root), name)
    if not os.path.isdir(path):
        raise io.BadInputError(f"{path}: folder missing; data.root must hold "
                               f"{', '.join(n + '/' for n in REQUIRED_FOLDERS)} (see ../shared/data/README.md)")
    return path


def pairs(root: str, subset: str, split: str) -> list[folder.Pair]:
    """Still pairs of one of :data:`STILL_SUBSETS` for split 'train' | 'val' | 'test' (train = all minus held out)."""
    if subset not in STILL_SUBSETS:
        raise ValueError(f"unknown still subset {subset!r}; choose one of {STILL_SUBSETS}")
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


def foregrounds(root: str, weights=None) -> tuple[list[composite.Foreground], list[float]]:
    """Compositing foregrounds and their draw probabilities.

    Train pairs of every still subset (image + mask) and every RGBA cutout. ``weights`` maps each of
    :data:`FOREGROUND_SOURCES` to its share of the draws (split evenly inside a source; a missing key or 0
    leaves that source out); None draws every foreground equally often. -> (foregrounds, probabilities).
    """
    by_source: dict[str, list[composite.Foreground]] = {
        sub: [composite.Foreground(p.image_path, p.mask_path) for p in pairs(root, sub, "train")]
        for sub in STILL_SUBSETS}
    cut = _dir(root, "cutouts")
    by_source["cutouts"] = [composite.Foreground(os.path.join(cut, n)) for n in sorted(os.listdir(cut))
                            if n.lower().endswith(".png") and io.check_file(os.path.join(cut, n)) is None]
    fgs, probs = [], []
    for name in FOREGROUND_SOURCES:
        share = 1.0 if weights is None else float(dict(weights).get(name, 0.0))
        if share < 0:
            raise ValueError(f"data.foreground_weights.{name} = {share}; weights must be >= 0")
        items = by_source[name]
        if share == 0 or not items:
            continue
        fgs += items
        probs += [1.0 if weights is None else share / len(items)] * len(items)
    if not fgs:
        raise ValueError("data.foreground_weights leaves no foreground; give at least one source a weight > 0")
    total = sum(probs)
    return fgs, [p / total for p in probs]


def backgrounds(root: str) -> list[str]:
    bg = _dir(root, "backgrounds")
    return [os.path.join(bg, n) for n in sorted(os.listdir(bg))
            if n.lower().endswith(io.IMAGE_EXTENSIONS) and io.check_file(os.path.join(bg, n)) is None]


def davis17_sequences(root: str) -> list[clips.Sequence]:
    """The DAVIS-2017 person clips of ``davis17/`` (all train: none is in a held-out set)."""
    return clips.list_davis(_dir(root, "davis17"))


def _negatives_config(config) -> dict:
    n = dict(config.data.negatives or {})
    for key in ("background_share", "object_prob", "no_person_prob"):
        value = float(n.get(key, 0.0))
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"data.negatives.{key} = {value}; it is a share in [0, 1]")
        n[key] = value
    return n


def _root(config) -> str:
    if not config.data.root:
        raise ValueError("data.source='mixed' needs --config.data.root=<real data root, e.g. ../shared/data>")
    return check_root(config.data.root)


def _composites(config, root: str, clip_length: int) -> composite.CompositeSource:
    """Composites of the train foregrounds on the backgrounds; with ``data.negatives`` the person-free train
    photos are a share ``background_share`` of the backgrounds and the masked negative objects are pasted
    beside the people (``object_prob``) or alone (``no_person_prob``)."""
    fgs, probs = foregrounds(root, config.data.foreground_weights)
    neg = _negatives_config(config)
    bgs = backgrounds(root)
    bg_probs, objects = None, []
    if neg["background_share"] > 0:
        photos = negatives.negative_images(root, "train", negatives.KINDS)
        share = neg["background_share"]
        bg_probs = [(1 - share) / len(bgs)] * len(bgs) + [share / len(photos)] * len(photos)
        bgs = bgs + photos
    if neg["object_prob"] > 0 or neg["no_person_prob"] > 0:
        objects = negatives.negative_objects(root, "train")
    return composite.CompositeSource(fgs, bgs, tuple(config.data.image_size),
                                     int(config.data.composite_size), seed=0, clip_length=clip_length,
                                     foreground_probabilities=probs, background_probabilities=bg_probs,
                                     objects=objects, object_prob=neg["object_prob"],
                                     no_person_prob=neg["no_person_prob"])


def _negative_images(config, root: str, temporal: bool):
    """Whole person-free train photos (empty masks); clips of them by camera motion for temporal models."""
    src = negatives.NegativeImageSource(negatives.negative_images(root, "train"), "negatives:train")
    if temporal:
        return pseudo_video.PseudoVideoFromPairs(src, int(config.data.clip_length), tuple(config.data.image_size),
                                                 seed=0)
    return src


def real_pairs(config, root: str) -> list[tuple[object, float]]:
    """[(PairSource of one still subset's train pairs, its share ``data.real_weights[subset]``)], shares > 0."""
    weights = dict(config.data.real_weights or {s: 1.0 for s in STILL_SUBSETS})
    unknown = sorted(set(weights) - set(STILL_SUBSETS))
    if unknown:
        raise ValueError(f"data.real_weights has unknown subsets {unknown}; choose from {STILL_SUBSETS}")
    out = []
    for sub in STILL_SUBSETS:
        share = float(weights.get(sub, 0.0))
        if share < 0:
            raise ValueError(f"data.real_weights.{sub} = {share}; weights must be >= 0")
        if share > 0:
            out.append((_audited(config, folder.PairSource(pairs(root, sub, "train"), sub)), share))
    return out


def _audit_settings(config, name: str) -> tuple[str, list[str]] | None:
    """(audit folder, directions) when ``data.label_audit.dir`` is set and its ``sources`` list ``name``."""
    audit = config.data.label_audit or {}
    names = [n.strip() for n in str(audit.get("sources", "")).split(",") if n.strip()]
    if not audit.get("dir") or name not in names:
        return None
    return audit["dir"], [d.strip() for d in str(audit.get("directions", "")).split(",") if d.strip()]


def _audited(config, source: folder.PairSource):
    """``source`` with the label audit's ignore maps when ``data.label_audit.dir`` is set and lists its subset."""
    settings = _audit_settings(config, source.name)
    if settings is None:
        return source
    return AuditedPairSource(source.pairs, source.name, *settings)


def _davis17_frames(config, root: str):
    """The DAVIS-2017 person frames (still models), with the audit's ignore maps when it lists 'davis17'."""
    seqs = davis17_sequences(root)
    settings = _audit_settings(config, "davis17")
    if settings is None:
        return clips.FrameSource(seqs)
    return AuditedFrameSource(seqs, "davis17", *settings)


def train_sources(config, temporal: bool) -> list[tuple[object, float]]:
    """[(source, weight)] for training on the real data.

    Weights: ``config.data.weights`` between kinds (composite vs real pairs; pseudo-video vs DAVIS), times
    ``config.data.real_weights`` between the real subsets (normalised to sum to 1 within the kind).
    """
    root, w = _root(config), config.data.weights
    for key, value in w.items():
        if float(value) < 0:
            raise ValueError(f"data.weights.{key} = {value}; weights must be >= 0")
    t = int(config.data.clip_length)
    out = []
    if w.get("negative", 0) > 0:
        out.append((_negative_images(config, root, temporal), w.negative))
    if w.get("camvid", 0) > 0:
        street = camvid.CamVidSource(root, "train")
        if temporal:
            street = pseudo_video.PseudoVideoFromPairs(street, t, tuple(config.data.image_size), seed=0)
        out.append((street, w.camvid))
    if temporal:
        if w.pseudo_video > 0:
            out.append((_composites(config, root, t), w.pseudo_video))
        if w.davis > 0:
            out.append((clips.ClipSource(davis_sequences(root, "train"), t, int(config.data.clip_stride)), w.davis))
        if w.get("davis17", 0) > 0:
            out.append((clips.ClipSource(davis17_sequences(root), t, int(config.data.clip_stride)), w.davis17))
    else:
        if w.get("davis17", 0) > 0:
            out.append((_davis17_frames(config, root), w.davis17))
        if w.composite > 0:
            out.append((_composites(config, root, 0), w.composite))
        if w.real > 0:
            parts = real_pairs(config, root)
            total = sum(share for _, share in parts)
            out += [(src, w.real * share / total) for src, share in parts]
    if not out:
        raise ValueError("all data.weights for this model kind are 0; give at least one source a weight > 0")
    return out


def subset_source(config, split: str, subset: str, temporal: bool):
    """Evaluation source of one subset (native resolution; the pipeline resizes)."""
    root, t = _root(config), int(config.data.clip_length)
    if subset == NEGATIVES:
        src = negatives.NegativeImageSource(negatives.negative_images(root, split), f"negatives:{split}")
        return RepeatFrames(src, t) if temporal else src
    if subset == CAMVID:
        src = camvid.CamVidSource(root, split)
        return RepeatFrames(src, t) if temporal else src
    if subset == "davis":
        seqs = davis_sequences(root, split)
        if temporal:
            return clips.ClipSource(seqs, t, int(config.data.clip_stride), cover=True)
        return clips.FrameSource(seqs)
    if subset not in SUBSETS:
        raise ValueError(f"unknown subset {subset!r}; choose one of {EVAL_SUBSETS + (CAMVID,)}")
    src = folder.PairSource(pairs(root, subset, split), subset)
    return RepeatFrames(src, t) if temporal else src


def eval_source(config, split: str, subset: str | None, temporal: bool):
    """One subset, or all subsets of the split concatenated in the order of :data:`SUBSETS`."""
    if split not in ("val", "test"):
        raise ValueError(f"unknown split {split!r} for the real data; choose val | test")
    if subset is not None:
        return subset_source(config, split, subset, temporal)
    return ConcatSource([(s, subset_source(config, split, s, temporal)) for s in SUBSETS])


def heldout_files(root: str, split: str = "test", subset: str = "portraits") -> list[dict]:
    """Original full-resolution files of a held-out subset, in evaluation order.

    -> [{'name': str, 'image_path': str, 'mask_path': str, 'sequence': str}] ('sequence' is '' for stills;
    ``camvid`` entries also have 'ignore_path'). Load one with :func:`read_heldout` (mask resized to the image with
    nearest-neighbour where only its size differs; the person-free ``negatives`` have no mask file: their mask is
    all zero).
    """
    if subset == NEGATIVES:
        return negatives.heldout_files(root, split)
    if subset == CAMVID:
        return camvid.heldout_files(root, split)
    if subset == "davis":
        return [{"name": f"{s.name}/{os.path.basename(f)}", "image_path": f, "mask_path": m, "sequence": s.name}
                for s in davis_sequences(root, split) for f, m in zip(s.frames, s.masks)]
    return [{"name": p.stem, "image_path": p.image_path, "mask_path": p.mask_path, "sequence": ""}
            for p in pairs(root, subset, split)]


def read_heldout(entry: dict) -> dict:
    """One :func:`heldout_files` entry -> {'image': uint8 (H, W, 3), 'mask': uint8 (H, W, 1)}, plus 'ignore' uint8
    (H, W, 1) (255 = left out of every metric) where the entry has an 'ignore_path'."""
    if not entry["mask_path"]:
        image = io.read_image(entry["image_path"])
        return {"image": image, "mask": np.zeros(image.shape[:2] + (1,), np.uint8)}
    pair = io.read_pair(entry["image_path"], entry["mask_path"])
    if entry.get("ignore_path"):
        pair["ignore"] = camvid.read_ignore(entry["ignore_path"], pair["image"].shape[:2])
    return pair
