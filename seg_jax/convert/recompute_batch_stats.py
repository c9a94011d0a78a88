"""Re-estimate a per-frame model's BatchNorm statistics on real images, preprocessed as the Segmenter does.

    python -m seg_jax.convert.recompute_batch_stats --model mobilenet --weights seg_jax/weights/mobilenet \\
        --data_root ../shared/data --out runs/mobilenet_bn

Training keeps BatchNorm statistics as a moving average over augmented training crops, and an average of
checkpoints (:mod:`seg_jax.convert.average_weights`) averages those statistics too, which are then not the
statistics of the averaged network. This tool keeps every parameter and replaces only ``batch_stats`` with
population statistics: the network runs in training mode (each BatchNorm normalises with its batch, as when the
statistics were gathered) over the train split of every still source and DAVIS train frames (at most
``--per_source`` images each), every image resized to the size the Segmenter runs it at
(:meth:`seg_jax.Segmenter.input_size_for` with the weights' manifest) and batched with images of the same
size. Each layer's mean and variance are pooled over the batches, weighted by pixels (variance = pooled E[x^2] -
mean^2). ``--training_variant cpu-long`` instead takes ``--batches`` batches of that training recipe's own
pipeline (augmented crops and composites at the base size), the distribution the moving averages were gathered
on. Temporal models are not taken: rebuild the ConvLSTM from the new U-Net MobileNet weights with
:mod:`seg_jax.convert.convlstm_warm_start`.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from seg_jax.artifacts import weights_folder
from seg_jax.configs import apply_variant, get_default_config
from seg_jax.data import io, real
from seg_jax.data.pipeline import build_train_iterator
from seg_jax.inference.segmenter import Segmenter
from seg_jax.inference.streaming import preprocess
from seg_jax.models import get_spec

SOURCES = ("portraits", "selfies", "people", "fullbody", "davis")
NO_IMAGES = "no images to estimate BatchNorm statistics from; check --data_root and --per_source"
Flat = dict[tuple[str, ...], np.ndarray]


def layer_momenta(model, variables: Mapping[str, Any], images: jax.Array) -> Flat:
    """Each BatchNorm statistic's momentum m, measured rather than re-stated: Flax updates ``ra = m * ra +
    (1 - m) * batch`` in training mode, so the update from all-ones statistics minus the update from zeros is m.
    Flattened {path: scalar m}; ``images`` (B, h, w, 3) is any batch."""
    def update(fill: float) -> Flat:
        stats = jax.tree_util.tree_map(lambda x: jnp.full_like(x, fill), variables["batch_stats"])
        _, upd = model.apply({**variables, "batch_stats": stats}, images, train=True, mutable=["batch_stats"])
        return traverse_util.flatten_dict(upd["batch_stats"])
    ones, zeros = update(1.0), update(0.0)
    return {k: float(np.mean(np.asarray(ones[k]) - np.asarray(zeros[k]))) for k in ones}


def make_batch_moments(model, variables: Mapping[str, Any], momenta: Flat) -> Callable[[jax.Array], Flat]:
    """A jitted ``images (B, h, w, 3) -> {path: batch mean or variance}`` (paths end in 'mean' / 'var', as in
    ``batch_stats``): training-mode updates from zero statistics, divided by ``1 - m``."""
    zeros = jax.tree_util.tree_map(jnp.zeros_like, variables["batch_stats"])

    @jax.jit
    def moments(images):
        _, upd = model.apply({**variables, "batch_stats": zeros}, images, train=True, mutable=["batch_stats"])
        flat = traverse_util.flatten_dict(upd["batch_stats"])
        return {k: v / (1.0 - momenta[k]) for k, v in flat.items()}
    return lambda images: {k: np.asarray(v, np.float64) for k, v in moments(images).items()}


def pool_moments(batches: Iterable[tuple[Flat, float]]) -> Flat:
    """Population statistics from per-batch (moments, weight): mean = weighted mean of the batch means, var =
    weighted mean of (batch var + batch mean^2) - mean^2. Raises ValueError when there is no batch."""
    total, first, second = 0.0, defaultdict(float), defaultdict(float)
    for moments, weight in batches:
        for k, v in moments.items():
            if k[-1] == "mean":
                first[k[:-1]] = first[k[:-1]] + weight * v
                second[k[:-1]] = second[k[:-1]] + weight * (moments[k[:-1] + ("var",)] + v ** 2)
        total += weight
    if not total:
        raise ValueError(NO_IMAGES)
    out: Flat = {}
    for layer, s in first.items():
        mean = s / total
        out[layer + ("mean",)] = mean.astype(np.float32)
        out[layer + ("var",)] = np.maximum(second[layer] / total - mean ** 2, 0.0).astype(np.float32)
    return out


def image_paths(data_root: str, per_source: int, seed: int = 0) -> dict[str, list[str]]:
    """Train-split image paths per source of :data:`SOURCES` (DAVIS: every frame of the train sequences), each
    list a seeded random sample of at most ``per_source``."""
    rng = random.Random(seed)
    out = {}
    for source in SOURCES:
        if source == "davis":
            paths = [f for seq in real.davis_sequences(data_root, "train") for f in seq.frames]
        else:
            paths = [p.image_path for p in real.pairs(data_root, source, "train")]
        paths = sorted(paths)
        rng.shuffle(paths)
        out[source] = paths[:per_source]
    return out


def batches_by_size(paths: Sequence[str], size_for: Callable[[Sequence[int]], tuple[int, int]],
                    batch_size: int) -> list[tuple[jax.Array, float]]:
    """[(images (B, h, w, 3) float in [0, 1], pixel weight B*h*w)]: each image decoded and resized to
    ``size_for(its (H, W))`` (a :meth:`seg_jax.Segmenter.input_size_for`) as the Segmenter resizes it, grouped by
    that size; a size's last batch may be smaller."""
    groups: dict[tuple[int, int], list[jax.Array]] = defaultdict(list)
    for path in paths:
        image = io.read_image(path)
        size = size_for(image.shape[:2])
        groups[size].append(preprocess(jnp.asarray(image), size)[1])
    out = []
    for size, members in sorted(groups.items()):
        for i in range(0, len(members), batch_size):
            images = jnp.concatenate(members[i:i + batch_size], axis=0)
            out.append((images, float(images.shape[0] * size[0] * size[1])))
    return out


def training_batches(model_name: str, variant: str, data_root: str, size: Sequence[int], count: int,
                     seed: int) -> list[tuple[jax.Array, float]]:
    """``count`` batches (images (B, h, w, 3) float in [0, 1], weight 1) of the ``variant`` training recipe of
    ``model_name`` (:func:`seg_jax.configs.apply_variant`), read from ``data_root`` at ``size``."""
    config = get_default_config()
    config.model.name = model_name
    config = apply_variant(config, variant)
    config.data.root = data_root
    config.data.image_size = tuple(int(v) for v in size)
    it = build_train_iterator(config, seed=seed)
    return [(jnp.asarray(next(it)["image"], jnp.float32) / 255.0, 1.0) for _ in range(count)]


def recompute(model, variables: Mapping[str, Any], batches: Sequence[tuple[jax.Array, float]]) -> dict:
    """``variables`` with ``batch_stats`` replaced by the pooled statistics of ``batches``."""
    if not batches:
        raise ValueError(NO_IMAGES)
    momenta = layer_momenta(model, variables, batches[0][0])
    moments = make_batch_moments(model, variables, momenta)
    pooled = pool_moments((moments(images), weight) for images, weight in batches)
    return {**variables, "batch_stats": traverse_util.unflatten_dict({k: jnp.asarray(v) for k, v in pooled.items()})}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.convert.recompute_batch_stats", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mobilenet", help="a per-frame model: mobilenet | unet")
    p.add_argument("--weights", required=True, help="weights folder or training workdir to start from")
    p.add_argument("--data_root", required=True, help="the real data (../shared/data layout)")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--per_source", type=int, default=256, help="at most this many train images per source")
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--training_variant", default="",
                   help="take the statistics from this training recipe's pipeline (e.g. cpu-long) instead of real "
                        "images at the Segmenter's sizes")
    p.add_argument("--batches", type=int, default=128, help="with --training_variant: batches to pool")
    a = p.parse_args(argv)
    try:
        if get_spec(a.model).temporal:
            raise ValueError(f"--model {a.model} is temporal; recompute the U-Net MobileNet's statistics and "
                             "rebuild it with python -m seg_jax.convert.convlstm_warm_start")
        if min(a.per_source, a.batch_size, a.batches) < 1:
            raise ValueError("--per_source, --batch_size and --batches must be at least 1")
        # the Segmenter reads the weights and decides each image's inference size, as in use
        seg = Segmenter(a.model, a.weights, fast=False)
        base = seg.base_size
        if a.training_variant:
            batches = training_batches(a.model, a.training_variant, a.data_root, base, a.batches, a.seed)
            source = {"training_variant": a.training_variant, "batches": a.batches, "image_size": list(base)}
        else:
            paths = image_paths(a.data_root, a.per_source, a.seed)
            batches = batches_by_size([q for s in SOURCES for q in paths[s]], seg.input_size_for, a.batch_size)
            source = {"images": {s: len(v) for s, v in paths.items()}, "split": "train",
                      "base_size": [int(v) for v in base], "keep_aspect": seg.keep_aspect, "batch_size": a.batch_size}
        new = recompute(seg.model, seg.variables, batches)
    except (FileNotFoundError, ValueError) as e:
        print(f"seg_jax.convert.recompute_batch_stats: error: {e}", file=sys.stderr)
        return 2
    extra = {**weights_folder.manifest_description(seg.manifest), "batch_stats_from": {**source, "seed": a.seed},
             "commands": list(seg.manifest.get("commands") or []) + [
                 "python -m seg_jax.convert.recompute_batch_stats " + " ".join(argv if argv is not None
                                                                                else sys.argv[1:])]}
    out = weights_folder.save_weights(Path(a.out), seg.manifest.get("model") or {"name": a.model}, new, extra)
    print(f"recomputed the BatchNorm statistics of {a.model} on {sum(int(b.shape[0]) for b, _ in batches)} "
          f"images into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
