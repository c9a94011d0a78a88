"""Evaluate a model: the paper's Table 1 (and 2) per held-out source, plus IoU, boundary F and flicker.

  python -m seg_jax.evaluate --model mobilenet                       # shipped weights, ../shared/data test split
  python -m seg_jax.evaluate --model mobilenet,convlstm --out results/eval/eval.json
  python -m seg_jax.evaluate --config configs/mobilenet.py:tiny --checkpoint /tmp/run   # a training workdir
  python -m seg_jax.evaluate --peers rvm,modnet --peers_into results/eval/eval-mobilenet.json  # add peer rows only
  python -m seg_jax.evaluate --peers_into results/eval/eval-convlstm.json --peers_from results/eval/eval-mobilenet.json
                                                        # copy them from an evaluation of the same images

Two protocols, reported side by side:
- ``resized`` (the paper's): images and masks resized to the model's input size, metric sums over the split.
- ``full_res`` (the product): ``seg_jax.Segmenter`` on the original full-resolution images (guided-filter
  upsampling included), DAVIS sequences streamed in order with the state carried; scores at full resolution
  (Dice, person IoU and mIoU at threshold 0.5, MAD, boundary F), plus on video flicker = mean
  |alpha_t - alpha_{t-1}| over pixels whose true label does not change and dtSSD (RVM's scaling), and person
  recall (:mod:`seg_jax.evaluation.person_recall`: the share of labelled people found, overall and by size).

Sources: the held-out person sources, CamVid's street frames (every pedestrian labelled; its ``ignore`` pixels,
riders and unlabelled regions, count in no metric) and the person-free photos, where the data root has them.

Peers (``--peers mediapipe,rvm,modnet``, the default): MediaPipe's selfie segmenter (general 256x256 and landscape
144x256), RVM (recurrent MobileNetV3, ~384 px internally, state carried through each clip and zero per still) and
MODNet (short side 512) each run in their own virtualenv as a separate process (:mod:`seg_jax.peers`) on the same
decoded images, in the same order, and their alphas are scored by the same code at the same resolution (flicker and
dtSSD on video included); their rows stand beside seg_jax's per source. A peer that cannot be had leaves its rows
out after one line on stderr.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from seg_jax import data
from seg_jax.artifacts import model_io, weights_folder
from seg_jax.artifacts.settle import manifest_settle_steps
from seg_jax.bench.cpuinfo import cpu_model
from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import OutputError, check_output, write_text
from seg_jax.configs import get_default_config
from seg_jax.configs.default import DEFAULT_DATA_ROOT
from seg_jax.configs.flags import parser_for
from seg_jax.data import read_heldout
from seg_jax.evaluation.false_person import flagged_share, image_scores
from seg_jax.evaluation.metrics import add_sums, probability_sums, summarize
from seg_jax.evaluation.metrics_temporal import DtSSDMeter, FlickerMeter
from seg_jax.evaluation.person_recall import SIZE_BINS, add_counts, recall_counts, source_recall, summarize_recall
from seg_jax.inference.segmenter import Segmenter
from seg_jax.inference.sizes import parse_size
from seg_jax.models import build as model_build
from seg_jax.models import get_spec
from seg_jax.ops.stabilise import parse_stabilise
from seg_jax.peers import mediapipe as peers
from seg_jax.peers import modnet, rvm
from seg_jax.training.steps import TrainState, make_eval_step

EVAL_COMPILED_SIZES = 96     # frame sizes a full-resolution evaluation keeps compiled (~40 MB each)
TABLE1_COLUMNS = ("dice_loss", "dice", "mad", "mse", "iou", "boundary_f", "mean_image_dice", "false_person")


def is_plain_folder(data_path: str | os.PathLike) -> bool:
    """Whether ``data_path`` is a plain ``images/`` + ``masks/`` folder (scored by the resized protocol only: the
    full-resolution and peer rows need the shared data's held-out split)."""
    path = Path(data_path)
    return (path / "images").is_dir() and (path / "masks").is_dir()


def eval_config(model_name: str, model_config: Mapping[str, Any] | None, base: ml_collections.ConfigDict | None,
                data_path: str | None, image_size: Sequence[int]) -> ml_collections.ConfigDict:
    """The config the resized protocol runs with: ``base`` (or defaults), the model, and the data path."""
    config = ml_collections.ConfigDict(base.to_dict()) if base is not None else get_default_config()
    if model_config:
        config.model.update({k: v for k, v in dict(model_config).items() if k in config.model})
    config.model.name = model_name
    if data_path:
        path = Path(data_path)
        if not path.exists():
            raise FileNotFoundError(f"data folder {path} does not exist; pass --data ../shared/data or an "
                                    f"images/ + masks/ folder")
        if is_plain_folder(path):
            config.data.source, config.data.folder = "folder", str(path)
        else:
            config.data.source, config.data.root = "mixed", str(path)
    config.data.image_size = tuple(int(v) for v in image_size)
    config.data.augment = False
    config.max_eval_examples = 0
    return config


def evaluate_resized(model_name: str, variables: Mapping[str, Any], config: ml_collections.ConfigDict,
                     split: str, subset: str | None, settle_steps: int = 0) -> dict[str, float]:
    """The paper's protocol: metric sums over the whole (resized) split; temporal models see T=1 on stills
    (each clip settled on its first frame when the weights declare ``settle_steps``)."""
    config = ml_collections.ConfigDict(config.to_dict())
    if get_spec(model_name).temporal and subset != "davis":
        config.data.clip_length = 1  # still images: the paper's one-frame use of the ConvLSTM
    model = model_build.build_model(config.model)
    state = TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                       batch_stats=variables.get("batch_stats", {}), opt_state=None,
                       rng=jnp.zeros((2,), jnp.uint32))
    config.settle_steps = int(settle_steps)
    step = make_eval_step(model, model_name, config)
    total = None
    for batch in data.build_eval_batches(config, split=split, subset=subset,
                                         temporal=get_spec(model_name).temporal):
        total = add_sums(total, step(state, batch))
    if total is None:
        raise ValueError(f"split {split!r} subset {subset!r} is empty; check --data")
    return summarize(total, config.dice_smooth)


def evaluate_full_resolution(segmenter, files: Sequence[Mapping[str, str]], label: str = "") -> dict[str, float]:
    """Run ``segmenter`` on original images in order (resetting at each new sequence); score at full res.
    ``label``: shown on a progress bar on stderr (none when empty). Besides the pooled metrics: on person-free
    images the share flagged with a false person (``false_person_images``, :mod:`seg_jax.evaluation.false_person`),
    person recall overall and by size where the masks hold people (``person_recall*``, ``people*``:
    :mod:`seg_jax.evaluation.person_recall`), and ``per_image`` lists (Dice, false-person share, people and people
    found; the person-free images' largest region) in file order. Pixels an entry's ignore map marks count in no
    metric."""
    sums_fn = jax.jit(probability_sums)
    total, flicker, dtssd, previous_sequence, seconds, people = None, None, None, None, [], None
    per_image: dict[str, list] = {"dice": [], "false_person_share": [], "person_free_region_share": [],
                                  "people": [], "people_found": []}
    if label:
        from tqdm import tqdm
        files = tqdm(files, desc=label, unit="image", file=sys.stderr, dynamic_ncols=True, leave=False)
    for entry in files:
        pair = read_heldout(entry)
        sequence = entry.get("sequence") or ""
        if not sequence or sequence != previous_sequence:
            segmenter.reset()
        if sequence and sequence != previous_sequence:
            flicker, dtssd = flicker or FlickerMeter(), dtssd or DtSSDMeter()
            flicker.reset()
            dtssd.reset()
        previous_sequence = sequence
        t0 = time.perf_counter()
        alpha = segmenter.step(pair["image"])
        seconds.append(time.perf_counter() - t0)
        target = pair["mask"][..., 0].astype(np.float32) / 255.0
        ignore = pair["ignore"][..., 0] >= 128 if "ignore" in pair else None
        weights = None if ignore is None else (~ignore).astype(np.float32)[None]
        total = add_sums(total, sums_fn(alpha[None], target[None], None, weights))
        counts = recall_counts(alpha, target, ignore)
        people = add_counts(people, counts)
        per_image["people"].append(counts["people"])
        per_image["people_found"].append(counts["people_found"])
        scores = image_scores(alpha, target, ignore)
        per_image["dice"].append(scores["dice"])
        per_image["false_person_share"].append(scores["false_person_share"])
        if scores["person_free"]:
            per_image["person_free_region_share"].append(scores["largest_region_share"])
        if flicker is not None and sequence:
            flicker.update(alpha, pair["mask"])
            dtssd.update(alpha, pair["mask"])
    if total is None:
        raise ValueError("no files to evaluate")
    result = summarize(total)
    if people["people"] > 0:
        result.update(summarize_recall(people))
    if per_image["person_free_region_share"]:
        result["false_person_images"] = flagged_share(per_image["person_free_region_share"])
    result["per_image"] = per_image      # paired per-image scores: seg_jax.evaluation.ship_rule's bootstrap
    if flicker is not None:
        result["flicker"] = flicker.value
        result["dtssd"] = dtssd.value
    result["seconds_per_frame_median"] = statistics.median(seconds[1:] or seconds)
    return result


class ReplayAlphas:
    """A stand-in for a Segmenter that hands back alphas computed elsewhere (a peer), in order.

    ``step(image)`` -> the next float32 (H, W) alpha; its size must be the image's. ``reset()`` does nothing:
    the peer saw the frames in the same order.
    """

    def __init__(self, alphas: Sequence[np.ndarray]):
        self._alphas, self._next = list(alphas), 0

    def reset(self) -> None:
        pass

    def step(self, image: np.ndarray) -> np.ndarray:
        alpha = self._alphas[self._next]
        self._next += 1
        if alpha.shape != image.shape[:2]:
            raise ValueError(f"peer alpha {alpha.shape} does not match image {image.shape[:2]}")
        return alpha


PEER_ROWS = {"general_256x256": "mediapipe general 256x256", "landscape_144x256": "mediapipe landscape 144x256"}


def evaluate_mediapipe(data_root: str, split: str, subsets: Sequence[str], install: bool = True) -> list[dict]:
    """MediaPipe's two selfie models on the same held-out files, scored like seg_jax's full-resolution rows.

    -> one result dict per MediaPipe model ({"model", "peer": True, "full_res": {subset: metrics}}), or []
    after one line on stderr when the peer cannot be run.
    """
    import sys

    rows = {m: {"model": name, "peer": True, "split": split, "full_res": {}} for m, name in PEER_ROWS.items()}
    for subset in subsets:
        files = data.heldout_files(data_root, split=split, subset=subset)
        images = [data.read_heldout(e)["image"] for e in files]
        got = peers.mediapipe_alphas(images, install=install)
        if got["status"] != "ok":
            print(f"seg_jax.evaluate: MediaPipe rows left out: {got['reason']}", file=sys.stderr)
            return []
        for m in PEER_ROWS:
            metrics = evaluate_full_resolution(ReplayAlphas(got["alphas"][m]), files)
            metrics.pop("seconds_per_frame_median", None)   # replay time, not the peer's: meaningless
            rows[m]["full_res"][subset] = metrics
            rows[m]["version"] = got["version"]
    return list(rows.values())


ISOLATED_PEERS = ("rvm", "modnet")
PEER_CHOICES = ("mediapipe", *ISOLATED_PEERS)


def _isolated_peer(name: str):
    """(IsolatedPeer, row name) of an ONNX peer in its own virtualenv: 'rvm' or 'modnet'."""
    module = {"rvm": rvm, "modnet": modnet}[name]
    return module.PEER, module.ROW_NAME


def evaluate_isolated_peer(name: str, data_root: str, split: str, subsets: Sequence[str],
                           install: bool = True) -> list[dict]:
    """RVM or MODNet (``name``) on the same held-out files, scored like seg_jax's full-resolution rows.

    Each source's images go to the peer in order with their clip names (a recurrent peer carries its state
    through a clip and starts every still from zero). -> [one result dict ({"model", "peer": True,
    "full_res": {subset: metrics}, "peer_seconds_per_frame": {subset: s}})], or [] after one line on stderr
    when the peer cannot be run.
    """
    peer, row_name = _isolated_peer(name)
    row = {"model": row_name, "peer": True, "split": split, "full_res": {}, "peer_seconds_per_frame": {}}
    for subset in subsets:
        files = data.heldout_files(data_root, split=split, subset=subset)
        images = [data.read_heldout(e)["image"] for e in files]
        t0 = time.perf_counter()
        got = peer.alphas(images, [e.get("sequence") or "" for e in files], install=install)
        if got["status"] != "ok":
            print(f"seg_jax.evaluate: {peer.name} rows left out: {got['reason']}", file=sys.stderr)
            return []
        # the worker's wall time per frame (file transfer and process start included): an upper bound on its speed
        row["peer_seconds_per_frame"][subset] = (time.perf_counter() - t0) / max(1, len(files))
        metrics = evaluate_full_resolution(ReplayAlphas(got["alphas"][peer.models[0]]), files)
        metrics.pop("seconds_per_frame_median", None)   # replay time, not the peer's: meaningless
        row["full_res"][subset] = metrics
        row["version"] = {k: v for k, v in got["info"].items() if k != "frames"}
    return [row]


def run_peers(peers: Sequence[str], data_root: str, split: str, subsets: Sequence[str],
              install: bool = True) -> list[dict]:
    """The rows of ``peers`` (names from :data:`PEER_CHOICES`) on ``subsets`` of ``split``, in that order."""
    unknown = sorted(set(peers) - set(PEER_CHOICES))
    if unknown:
        raise ValueError(f"unknown --peers {unknown}; choose from {', '.join(PEER_CHOICES)}, or none")
    rows: list[dict] = []
    if "mediapipe" in peers and subsets:
        rows += evaluate_mediapipe(data_root, split, subsets, install=install)
    for name in (p for p in ISOLATED_PEERS if p in peers and subsets):
        rows += evaluate_isolated_peer(name, data_root, split, subsets, install=install)
    return rows


def add_peer_rows(evaluation: Mapping[str, Any], rows: Sequence[dict]) -> dict[str, Any]:
    """``evaluation`` (an evaluate JSON) with ``rows`` added; an existing peer row of the same name is replaced."""
    names = {r["model"] for r in rows}
    kept = [r for r in evaluation["results"] if not (r.get("peer") and r["model"] in names)]
    return {**evaluation, "results": kept + list(rows)}


def peer_rows_from(earlier: Mapping[str, Any], own: Mapping[str, Any]) -> list[dict]:
    """The peer rows of an ``earlier`` evaluate JSON, for ``own`` (a seg_jax row): they must have scored the same
    split and, per source of ``own``, the same number of examples; ValueError (one line) otherwise."""
    rows = [r for r in earlier.get("results", []) if r.get("peer")]
    if not rows:
        raise ValueError("it has no peer rows; run the peers with --peers instead")
    sources = own.get("full_res", {})
    for r in rows:
        if r.get("split") != own.get("split"):
            raise ValueError(f"its peers scored the {r.get('split')} split, this evaluation the {own.get('split')} "
                             "split")
        for name, metrics in sources.items():
            theirs = r.get("full_res", {}).get(name)
            if theirs is None or theirs.get("examples") != metrics.get("examples"):
                raise ValueError(f"{r['model']} did not score the same {name} images (its "
                                 f"{None if theirs is None else theirs.get('examples')} vs "
                                 f"{metrics.get('examples')}); run the peers with --peers instead")
    return [{**r, "full_res": {n: r["full_res"][n] for n in sources}} for r in rows]


def measure_fps(model_name: str, variables: Mapping[str, Any], model_config: Mapping[str, Any],
                input_size: Sequence[int], iterations: int = 30) -> dict[str, float]:
    """Batch-1 network frames/s at ``input_size`` (compile excluded; median of ``iterations``)."""
    model = model_build.build_model(model_config)
    h, w = input_size
    if get_spec(model_name).temporal:
        fn = jax.jit(lambda v, s, x: model.apply(v, s, x, method=model.step))
        state = get_spec(model_name).initial_state(1, h, w)
        run = lambda x: fn(variables, state, x)[1]  # noqa: E731
    else:
        fn = jax.jit(lambda v, x: model.apply(v, x, train=False))
        run = lambda x: fn(variables, x)  # noqa: E731
    x = jnp.zeros((1, h, w, 3), jnp.float32)
    t0 = time.perf_counter()
    run(x).block_until_ready()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(iterations):
        t0 = time.perf_counter()
        run(x).block_until_ready()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"fps": 1.0 / median, "latency_ms_median": 1e3 * median, "compile_s": compile_s,
            "input_size": [h, w], "iterations": iterations}


def warn_no_people(subset: str, metrics: Mapping[str, Any]) -> None:
    """One stderr line when a person source's masks hold no labelled person (its recall cell stays empty); the
    person-free photos are expected to have none."""
    if subset != data.NEGATIVES and "person_recall" not in metrics:
        try:
            source_recall(None, subset)
        except ValueError as e:
            print(f"seg_jax.evaluate: {e}", file=sys.stderr)


def hardware() -> dict[str, Any]:
    cpu = cpu_model() or platform.processor() or platform.machine()
    return {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind), "cpu": cpu,
            "cpu_count": os.cpu_count(), "jax": jax.__version__, "load_average": os.getloadavg()[0]}


def default_subsets(data_root: str) -> list[str]:
    """Every person source, CamVid's street frames and the person-free photos where the data root has them (one
    stderr line when it has no person-free photos)."""
    subsets = list(data.SUBSETS)
    if os.path.isdir(os.path.join(data_root, data.CAMVID)):
        subsets.append(data.CAMVID)
    if os.path.isdir(os.path.join(data_root, data.NEGATIVES)):
        return subsets + [data.NEGATIVES]
    print(f"seg_jax.evaluate: {data_root} has no negatives/ folder: no false-person rows on person-free photos",
          file=sys.stderr)
    return subsets


def evaluate_model(model_name: str, checkpoint: str | None = None, *, data_path: str | None = DEFAULT_DATA_ROOT,
                   base_config: ml_collections.ConfigDict | None = None, split: str = "test",
                   subsets: Sequence[str] | None = None, image_size: Sequence[int] | None = None,
                   full_res: bool = True, fps: bool = True, guided_subsample: int = 1,
                   base_size: str | None = None, stabilise: str | None = None) -> dict[str, Any]:
    """All metrics for one model. ``subsets`` None: portraits, people, davis for real data, else the split.
    ``guided_subsample``: the full-resolution protocol's guided-filter fit scale (``Refine.subsample``);
    ``base_size``: its inference pixel budget ('HxW', adapted to each image's aspect; None = the manifest's);
    ``stabilise``: its stream's hold (:func:`seg_jax.ops.stabilise.parse_stabilise` form; None = the default)."""
    variables, manifest = model_io.load_weights(model_name, checkpoint)
    model_config = dict(manifest.get("model") or {"name": model_name})
    size = tuple(image_size or manifest.get("input_size") or
                 (base_config.data.image_size if base_config is not None else (256, 256)))
    config = eval_config(model_name, model_config, base_config, data_path, size)
    real = config.data.source == "mixed"
    subsets = list(subsets) if subsets else (default_subsets(config.data.root) if real else [None])
    result: dict[str, Any] = {
        "model": model_name, "checkpoint": str(checkpoint or weights_folder.shipped_weights_dir(model_name)),
        "parameters": model_build.count_parameters(variables),
        "size_mb": model_build.count_parameters(variables) * 4 / 1e6, "input_size": list(size), "split": split,
        "hardware": hardware(), "resized": {}, "full_res": {},
        "training": {k: manifest[k] for k in ("metrics", "training", "data") if k in manifest},
    }
    for subset in subsets:
        result["resized"][subset or "all"] = evaluate_resized(model_name, variables, config, split, subset,
                                                              manifest_settle_steps(manifest, checkpoint))
    if full_res and real:
        import dataclasses
        hold = parse_stabilise(stabilise) if stabilise else None
        # the manifest sets input size and aspect handling
        # a held-out split has tens of image sizes: keep them all compiled (memory is bounded by the split)
        segmenter = Segmenter(model_name, checkpoint, guided_subsample=guided_subsample, base_size=base_size,
                              stabilise=hold, max_compiled_sizes=EVAL_COMPILED_SIZES)
        result["refine"] = {"guided_subsample": int(guided_subsample)}
        result["stabilise"] = dataclasses.asdict(segmenter.stabilise)
        result["full_res_base_size"] = list(segmenter.base_size)
        for subset in subsets:
            files = data.heldout_files(config.data.root, split=split, subset=subset)
            result["full_res"][subset] = evaluate_full_resolution(segmenter, files, f"{model_name} {subset}")
            warn_no_people(subset, result["full_res"][subset])
    if fps:
        result["speed"] = measure_fps(model_name, variables, model_config, size)
    return result


def temporal_comparison(results: Sequence[Mapping[str, Any]]) -> dict[str, float] | None:
    """Flicker of the ConvLSTM model relative to the per-frame MobileNet model on the DAVIS test clips."""
    by_name = {r["model"]: r for r in results}
    try:
        per_frame = by_name["mobilenet"]["full_res"]["davis"]["flicker"]
        temporal = by_name["convlstm"]["full_res"]["davis"]["flicker"]
    except KeyError:
        return None
    return {"flicker_mobilenet": per_frame, "flicker_convlstm": temporal, "ratio_convlstm_over_mobilenet":
            temporal / max(per_frame, 1e-12)}


def to_markdown(results: Sequence[Mapping[str, Any]], comparison: Mapping[str, float] | None = None) -> str:
    """Table 1 (per protocol and source), Table 2 (size/speed) and the flicker comparison."""
    lines = []
    rows = [(r["model"], s, m) for r in results if not r.get("peer") for s, m in r.get("resized", {}).items()]
    if rows:
        lines += [f"**Table 1: resized to the model input (the paper's protocol)** (split: {results[0]['split']})",
                  "", "| Model | Source | Dice loss | Dice | MAD | MSE | IoU | Boundary F | mean image Dice "
                  "| False person |", "|---|---|---|---|---|---|---|---|---|---|"]
        for model, subset, m in rows:
            lines.append(f"| {model} | {subset} ({int(m['examples'])}) | "
                         + " | ".join(_cell(m, c) for c in TABLE1_COLUMNS) + " |")
        lines.append("")
    lines += full_res_table(results)
    speed_rows = [r for r in results if "speed" in r]
    if speed_rows:
        hw = speed_rows[0]["hardware"]
        lines += [f"**Table 2: size and speed** (batch 1, {hw['backend']}: {hw['cpu']}, {hw['cpu_count']} cores, "
                  f"load {hw['load_average']:.1f})", "",
                  "| Model | Parameters | Size MB (float32) | Input | FPS | Latency ms |", "|---|---|---|---|---|---|"]
        for r in speed_rows:
            s = r["speed"]
            lines.append(f"| {r['model']} | {r['parameters']:,} | {r['size_mb']:.1f} | {s['input_size'][0]}x"
                         f"{s['input_size'][1]} | {s['fps']:.1f} | {s['latency_ms_median']:.1f} |")
        lines.append("")
    if comparison:
        lines += [f"**Temporal stability** (DAVIS test clips, pixels whose true label is unchanged): flicker "
                  f"{comparison['flicker_convlstm']:.5f} (convlstm) vs {comparison['flicker_mobilenet']:.5f} "
                  f"(mobilenet), ratio {comparison['ratio_convlstm_over_mobilenet']:.3f}", ""]
    return "\n".join(lines)


RECALL_COLUMNS = ("person_recall", *(f"person_recall_{name}" for name, _, _ in SIZE_BINS))
FULL_RES_COLUMNS = ("dice", "iou", "miou", "mad", "boundary_f", "false_person", "false_person_images",
                    *RECALL_COLUMNS)
NO_DICE_SOURCES = ("negatives",)    # person-free: Dice, IoU and boundary F are undefined there


def _cell(m: Mapping[str, float], column: str, subset: str = "") -> str:
    if column not in m or (subset in NO_DICE_SOURCES and column not in ("mad", "false_person",
                                                                        "false_person_images")):
        return "-"
    return f"{m[column]:.4f}"


def full_res_table(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown lines: per source, every seg_jax model then every peer, at full resolution."""
    by_source: dict[str, list[tuple[str, Mapping[str, float]]]] = {}
    for r in results:
        for subset, m in r.get("full_res", {}).items():
            by_source.setdefault(subset, []).append((r["model"], m))
    if not by_source:
        return []
    split = results[0].get("split", "test")
    lines = [f"**seg_jax vs peers at full resolution** (split: {split}; seg_jax through `Segmenter.step`, "
             "MediaPipe through its own `process()`, RVM and MODNet through their ONNX graphs in their own "
             "processes, on the same decoded images; Dice and IoU at 0.5; false person: the share of non-person "
             "pixels predicted person; images flagged: the share of person-free photos with a predicted person "
             "region of at least 1 % of the image; person recall: the share of labelled people (connected regions) "
             "at least half predicted person, overall and by size (small < 1 %, medium 1-5 %, large > 5 % of the "
             "image); ignored pixels count nowhere; flicker and dtSSD on video only)", "",
             "| Source | Model | Dice | IoU | mIoU | MAD | Boundary F | False person | Images flagged | Person recall "
             "| Recall small | Recall medium | Recall large | Flicker | dtSSD |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for subset, entries in by_source.items():
        for model, m in entries:
            temporal = " | ".join(f"{m[k]:.4f}" if k in m else "-" for k in ("flicker", "dtssd"))
            lines.append(f"| {subset} ({int(m['examples'])}) | {model} | "
                         + " | ".join(_cell(m, c, subset) for c in FULL_RES_COLUMNS) + f" | {temporal} |")
    lines.append("")
    return lines


def _write_outputs(out: Path, evaluation: Mapping[str, Any], markdown: str, option: str = "--out",
                   guards: Mapping[str, Any] | None = None) -> None:
    """``out`` (JSON) and its .md through the shared writer (beside, then renamed: a failed write keeps the
    earlier files); a failure is one line and exit code 2."""
    try:
        write_text(out, json.dumps(evaluation, indent=2, default=float) + "\n", option=option, **(guards or {}))
        write_text(out.with_suffix(".md"), markdown + "\n", option=option, **(guards or {}))
    except OutputError as e:
        fail("seg_jax.evaluate", str(e))
    print(f"wrote {out} and {out.with_suffix('.md')}")


def _define_flags() -> None:
    """The command line of ``python -m seg_jax.evaluate``."""
    config_flags.DEFINE_config_file("config", None, "Optional training config (model + data settings).",
                                    lock_config=False)
    flags.DEFINE_list("model", None, "Model name(s): mobilenet, convlstm, unet (default: the config's model).")
    flags.DEFINE_string("checkpoint", None, "Weights folder or training workdir (default: shipped weights).")
    flags.DEFINE_string("data", None, f"Real data root (default {DEFAULT_DATA_ROOT}) or an images/+masks/ folder.")
    flags.DEFINE_string("split", "test", "Split to evaluate: test | val.")
    flags.DEFINE_list("subsets", None, "Subsets of the real data (default: portraits, selfies, people, fullbody, "
                      "davis, and negatives (person-free photos: false people) where the data root has them).")
    flags.DEFINE_string("image_size", None, "Model input size HxW for the resized protocol, e.g. 256x256 "
                        "(default: the manifest's).")
    flags.DEFINE_bool("full_res", True, "Also score the Segmenter at full resolution (real data only).")
    flags.DEFINE_bool("fps", True, "Measure batch-1 frames/s (Table 2).")
    flags.DEFINE_integer("guided_subsample", 1, "Full-resolution protocol: fit the guided upsampling at "
                         "1/N of the inference size (seg_jax.inference.streaming.Refine.subsample).")
    flags.DEFINE_string("base_size", None, "Full-resolution protocol: the Segmenter's inference pixel budget HxW "
                        "(adapted to each image's aspect ratio; default: the weights manifest's).")
    flags.DEFINE_string("stabilise", None, "Full-resolution protocol: the stream's hold of the previous alpha as "
                        "STRENGTH,MOTION[,RADIUS[,track]] or off (default: "
                        "seg_jax.inference.segmenter.DEFAULT_STABILISE).")
    flags.DEFINE_list("peers", list(PEER_CHOICES), "Peers scored beside seg_jax on the same images (full "
                      "resolution, real data): any of mediapipe, rvm, modnet, or none.")
    flags.DEFINE_bool("peer_install", True, "Create each peer's own virtualenv when it is missing (needs PyPI).")
    flags.DEFINE_string("out", None, "JSON output path (default results/eval/eval-<models>.json); .md written beside.")
    flags.DEFINE_string("peers_into", None, "Only run --peers on the split and sources of this evaluation JSON "
                        "and add their rows to it (rewriting it and its .md); seg_jax's rows are kept as they are.")
    flags.DEFINE_string("peers_from", None, "With --peers_into: copy the peer rows of this earlier evaluation of "
                        "the same split and sources instead of running the peers again.")


def _add_peers_into(path: Path, f, data_path) -> None:
    """``--peers_into``: run the peers on an earlier evaluation's split and sources, add their rows to it."""
    try:
        evaluation = json.loads(path.read_text())
        own = next(r for r in evaluation["results"] if not r.get("peer"))
        if f.peers_from:
            rows = peer_rows_from(json.loads(Path(f.peers_from).read_text()), own)
        else:
            rows = run_peers([p for p in f.peers if p and p != "none"], data_path, own["split"],
                             list(own.get("full_res", {})), install=f.peer_install)
    except (OSError, ValueError, KeyError, StopIteration) as e:
        option = f"--peers_from {f.peers_from}" if f.peers_from else f"--peers_into {path}"
        raise SystemExit(f"seg_jax.evaluate: error: {option}: {type(e).__name__}: {e}") from None
    evaluation = add_peer_rows(evaluation, rows)
    markdown = to_markdown(evaluation["results"], evaluation.get("temporal"))
    print(markdown)
    _write_outputs(path, evaluation, markdown, option="--peers_into")


def _run(_) -> None:
    logging.set_verbosity(logging.WARNING)
    f = flags.FLAGS
    config = f.config
    models = f.model or ([config.model.name] if config is not None else ["mobilenet"])
    data_path = f.data or (None if config is not None and config.data.source != "mixed" else DEFAULT_DATA_ROOT)
    if config is not None and config.data.source == "mixed" and not f.data and config.data.root:
        data_path = config.data.root
    if f.peers_into:
        return _add_peers_into(Path(f.peers_into), f, data_path)
    if f.checkpoint and len(models) > 1:
        fail("seg_jax.evaluate", "--checkpoint applies to one --model; evaluate one at a time")
    out = Path(f.out or f"results/eval/eval-{'-'.join(models)}.json")
    try:   # before the (long) evaluation: never over the weights read, never into a read-only place
        for path in (out, out.with_suffix(".md")):
            check_output(path, inputs=[f.checkpoint], protected_dirs=[f.checkpoint], option="--out")
    except OutputError as e:
        fail("seg_jax.evaluate", str(e))
    plain = bool(data_path) and is_plain_folder(data_path)
    peers = [p for p in f.peers if p and p != "none"]
    asked = [flag for flag, wanted in (("--full_res", f["full_res"].present and f.full_res),
                                       ("--peers", f["peers"].present and peers)) if wanted]
    if plain and asked:
        fail("seg_jax.evaluate", f"{' and '.join(asked)} need the shared data's held-out split; "
             f"--data {data_path} is a plain images/ + masks/ folder (resized protocol only): pass --data "
             "../shared/data, or leave those flags out")
    try:
        image_size = parse_size(f.image_size, flag="image_size") if f.image_size else None
        results = [evaluate_model(m, f.checkpoint, data_path=data_path, base_config=config, split=f.split,
                                  subsets=f.subsets, image_size=image_size, full_res=f.full_res, fps=f.fps,
                                  guided_subsample=f.guided_subsample, base_size=f.base_size,
                                  stabilise=f.stabilise)
                   for m in models]
        full_res_subsets = [s for r in results[:1] for s in r.get("full_res", {})]
        results += run_peers([p for p in f.peers if p and p != "none"], data_path, f.split, full_res_subsets,
                             install=f.peer_install)
    except (FileNotFoundError, ValueError) as e:
        fail("seg_jax.evaluate", str(e))
    if plain:
        print(f"seg_jax.evaluate: --data {data_path} is a plain images/ + masks/ folder: resized protocol only "
              "(no full-resolution or peer rows; those need --data ../shared/data)", file=sys.stderr)
    comparison = temporal_comparison(results)
    markdown = to_markdown(results, comparison)
    print(markdown)
    _write_outputs(out, {"results": results, "temporal": comparison}, markdown,
                   guards={"inputs": [f.checkpoint], "protected_dirs": [f.checkpoint]})


def main(argv=None) -> None:
    _define_flags()
    app.run(_run, argv=argv, flags_parser=parser_for("seg_jax.evaluate", doc=__doc__ or ""))


if __name__ == "__main__":
    main()
