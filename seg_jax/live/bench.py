"""Measurements of the live tool, written to results/ (the numbers quoted in the README come from here).

  python -m seg_jax.live.bench pipeline                    # results/bench/live-pipeline.json: one thread vs three
  python -m seg_jax.live.bench presets --per-source 6      # results/bench/presets.{json,md}: fps and Dice per preset
  python -m seg_jax.live.bench failsafe --per-source 60    # results/bench/failsafe-false-alarms.json

``pipeline`` runs the sample clip end to end (decode, segment, blur, H.264 encode) alternately with
``--no-pipeline`` and with the default three threads, and keeps every run. ``presets`` times each preset end to
end on the sample clip scaled to 640x480 (a webcam's size) and scores it with ``seg_jax.evaluation.evaluate``'s
full-resolution protocol on the first ``--per-source`` examples of each test source (all of them with 0).
``failsafe`` runs the fail-safe rule on the shipped model's alphas of good pictures (the test split: the
DAVIS sequences as streams, each still photo as its own stream) and counts its false alarms, with the largest
uncertain share and person coverage it saw, against which the rule's thresholds were set.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from seg_jax import data as seg_data
from seg_jax.data.io import read_pair
from seg_jax.evaluation.evaluate import evaluate_full_resolution, hardware
from seg_jax.inference.segmenter import Segmenter
from seg_jax.live.app import LiveOptions, load_segmenter, run
from seg_jax.live.cli import use_compile_cache
from seg_jax.live.failsafe import Failsafe, FailsafeRule
from seg_jax.live.presets import DEFAULT_PRESET, PRESETS, apply_preset
from seg_jax.live.sources import open_source, resize_cover


def _timed_run(opts: LiveOptions, segmenter) -> dict:
    stats = run(opts, segmenter=segmenter)
    return {"fps": stats.fps, "segment_composite_fps": stats.process_fps, "frames": stats.frames,
            "latency_median_ms": stats.latency_median_ms, "latency_p95_ms": stats.latency_p95_ms,
            "flicker": stats.flicker, "failsafe_frames": stats.failsafe_frames}


def _median(runs: list[dict], key: str) -> Optional[float]:
    values = [r[key] for r in runs if r[key] is not None]
    return statistics.median(values) if values else None


def bench_pipeline(repeats: int, out: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = LiveOptions(source="sample", mode="blur", output=str(Path(tmp) / "x.mp4"), quiet=True)
        segmenter = load_segmenter(apply_preset(base))
        runs = {"one thread (--no-pipeline)": [], "pipelined (default)": []}
        for _ in range(repeats):   # alternate, so a change in the machine's load hits both alike
            for name, threaded in (("one thread (--no-pipeline)", False), ("pipelined (default)", True)):
                opts = LiveOptions(**{**base.__dict__, "pipeline": threaded})
                runs[name].append(_timed_run(opts, segmenter))
    result = {"command": "python -m seg_jax.live.bench pipeline", "clip": "sample (640x360, blur, H.264 out)",
              "hardware": hardware(), "runs": runs,
              "median": {name: {k: _median(r, k) for k in r[0]} for name, r in runs.items()}}
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _clip_640x480(folder: Path, frames: int = 90) -> Path:
    """The sample clip scaled to cover 640x480 (centre crop), as MJPG, for a webcam-sized end-to-end run."""
    import cv2

    src = open_source("sample")
    path = folder / "sample_640x480.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), src.fps, (640, 480))
    for _, frame in zip(range(frames), src):
        writer.write(resize_cover(frame, (480, 640))[..., ::-1])
    writer.release()
    src.close()
    return path


def _dice(segmenter, data: str, per_source: int) -> dict:
    scores = {}
    for subset in seg_data.SUBSETS:
        files = seg_data.heldout_files(data, split="test", subset=subset)
        files = files[:per_source] if per_source else files
        r = evaluate_full_resolution(segmenter, files)
        scores[subset] = {"dice": r["dice"], "examples": len(files), **({"flicker": r["flicker"]}
                                                                         if "flicker" in r else {})}
    return scores


def bench_presets(per_source: int, data: str, repeats: int, out: Path) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = _clip_640x480(Path(tmp))
        setups = [apply_preset(LiveOptions(source=str(clip), mode="blur", output=str(Path(tmp) / "x.mp4"),
                                           preset=preset.name, quiet=True)) for preset in PRESETS]
        segmenters = [load_segmenter(opts) for opts in setups]
        timings: list[list[dict]] = [[] for _ in setups]
        for _ in range(repeats):   # round robin: a change in the machine's load hits every preset alike
            for opts, segmenter, runs in zip(setups, segmenters, timings):
                runs.append(_timed_run(opts, segmenter))
        for preset, opts, segmenter, runs in zip(PRESETS, setups, segmenters, timings):
            scores = _dice(segmenter, data, per_source)
            rows.append({"preset": preset.name, "model": opts.model, "refine": opts.refine,
                         "guided_subsample": opts.guided_subsample,
                         "inference_size_640x480": list(segmenter.input_size_for((480, 640))),
                         "fps_640x480": _median(runs, "fps"), "latency_median_ms": _median(runs, "latency_median_ms"),
                         "latency_p95_ms": _median(runs, "latency_p95_ms"), "runs": runs, "dice": scores,
                         "mean_dice": statistics.mean(s["dice"] for s in scores.values())})
    fast_enough = [r for r in rows if r["fps_640x480"] >= 30.0]
    best = max(fast_enough, key=lambda r: r["mean_dice"])["preset"] if fast_enough else None
    result = {"command": f"python -m seg_jax.live.bench presets --per-source {per_source} --repeats {repeats}",
              "per_source": per_source, "split": "test", "hardware": hardware(), "default": DEFAULT_PRESET,
              "best_at_30fps": best, "presets": rows}
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    out.with_suffix(".md").write_text(presets_markdown(result))
    return result


def presets_markdown(result: dict) -> str:
    subsets = list(result["presets"][0]["dice"])
    cap = (f"the first {result['per_source']} examples of each source" if result["per_source"]
           else "every example")
    lines = [f"# Live presets (`--preset`)", "",
             f"Generated by `{result['command']}` on {result['hardware']['cpu']} "
             f"({result['hardware']['cpu_count']} cores, load average {result['hardware']['load_average']:.1f} "
             f"at the start: the machine was shared, so rates are indicative).", "",
             "End-to-end fps: the sample clip's first 90 frames scaled to 640x480, decode + segment + blur + H.264 "
             "encode, median of the runs (taken round robin over the presets). Dice: `seg_jax.evaluation.evaluate`'s "
             f"full-resolution protocol on the {result['split']} split, "
             f"**{cap} only** (a cheap check, not the full evaluation in `results/eval/eval-*.md`).", "",
             "| Preset | Model | Inference size at 640x480 | Refine | fps 640x480 | Latency median / p95 ms | "
             + " | ".join(f"Dice {s}" for s in subsets) + " | Mean Dice |",
             "|---" * (7 + len(subsets)) + "|"]
    for r in result["presets"]:
        refine = r["refine"] + (f" /{r['guided_subsample']}" if r["guided_subsample"] != 1 else "")
        h, w = r["inference_size_640x480"]
        lines.append(f"| {r['preset']} | {r['model']} | {w}x{h} | {refine} | {r['fps_640x480']:.1f} | "
                     f"{r['latency_median_ms']:.0f} / {r['latency_p95_ms']:.0f} | "
                     + " | ".join(f"{r['dice'][s]['dice']:.4f}" for s in subsets) + f" | {r['mean_dice']:.4f} |")
    best = result["best_at_30fps"]
    lines += ["", f"Default: `{result['default']}`; the best mean Dice at >= 30 fps in this run: `{best or 'none'}`."
              + ("" if best else " No preset reached 30 fps under this machine's load, so the rule that picks the "
                 "default (the best quality at >= 30 fps at 640x480) could not be checked here: the default stays "
                 "the settings the live tool had before presets; rerun on an idle machine.")
              + (" The default disagrees with this run." if best and best != result["default"] else ""), ""]
    return "\n".join(lines)


def bench_failsafe(per_source: int, data: str, out: Path) -> dict:
    import collections

    import numpy as np

    rule, segmenter, sources = FailsafeRule(), Segmenter("mobilenet"), {}
    for subset in seg_data.SUBSETS:
        files = seg_data.heldout_files(data, split="test", subset=subset)
        files = files[:per_source] if per_source else files
        reasons, engaged, uncertain, coverage, previous, failsafe = collections.Counter(), 0, [], [], None, None
        for entry in files:
            if not entry["sequence"] or entry["sequence"] != previous:
                segmenter.reset()
                failsafe = Failsafe(rule)
            previous = entry["sequence"]
            image = read_pair(entry["image_path"], entry["mask_path"])["image"]
            alpha = segmenter.step(image)
            decision = failsafe.update(image, alpha)
            reasons.update(decision.reasons if decision.bad else ())
            engaged += int(decision.engaged)
            low, high = rule.uncertain_band
            uncertain.append(float(((alpha > low) & (alpha < high)).mean()))
            coverage.append(float((alpha > 0.5).mean()))
        sources[subset] = {"frames": len(files), "bad_frames_by_reason": dict(reasons), "engaged_frames": engaged,
                           "uncertain_share_max": max(uncertain),
                           "uncertain_share_p95": float(np.percentile(uncertain, 95)),
                           "coverage_max": max(coverage), "coverage_p95": float(np.percentile(coverage, 95))}
    result = {"command": f"python -m seg_jax.live.bench failsafe --per-source {per_source}", "model": "mobilenet",
              "split": "test", "rule": dataclasses.asdict(rule), "sources": sources}
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.live.bench", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    pipe = sub.add_parser("pipeline", help="one thread vs three on the sample clip")
    pipe.add_argument("--repeats", type=int, default=3)
    pipe.add_argument("--out", default="results/bench/live-pipeline.json")
    pre = sub.add_parser("presets", help="fps and Dice of each preset")
    pre.add_argument("--per-source", type=int, default=6, help="examples per test source (0: all)")
    pre.add_argument("--repeats", type=int, default=3)
    pre.add_argument("--data", default="../shared/data")
    pre.add_argument("--out", default="results/bench/presets", help="path without extension (.json and .md)")
    safe = sub.add_parser("failsafe", help="the fail-safe's false alarms on good pictures")
    safe.add_argument("--per-source", type=int, default=60, help="examples per test source (0: all)")
    safe.add_argument("--data", default="../shared/data")
    safe.add_argument("--out", default="results/bench/failsafe-false-alarms.json")
    args = p.parse_args(argv)
    use_compile_cache()
    t0 = time.perf_counter()
    if args.what == "pipeline":
        result = bench_pipeline(args.repeats, Path(args.out))
        print(json.dumps(result["median"], indent=2))
    elif args.what == "failsafe":
        print(json.dumps(bench_failsafe(args.per_source, args.data, Path(args.out))["sources"], indent=2))
    else:
        result = bench_presets(args.per_source, args.data, args.repeats, Path(args.out))
        print(presets_markdown(result))
    print(f"done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
