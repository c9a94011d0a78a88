"""Render benchmark JSON files as markdown: ``python -m seg_jax.bench.report results/bench/bench-*.json [--out FILE]``.

Writes ``results/bench/BENCH.md`` by default (the README includes it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


def _table(headers: list[str], rows: Iterable[list[Any]]) -> list[str]:
    rows = list(rows)
    if not rows:
        return []
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def _rows(res: dict, key: str) -> list[dict]:
    v = res.get(key)
    return v if isinstance(v, list) else []


def _skips(res: dict, key: str) -> list[str]:
    v = res.get(key)
    if isinstance(v, dict) and "error" in v:
        return [f"- {key}: error: {v['error']}"]
    return [f"- {key} / {r.get('model', '')}: {r['skipped']}" for r in _rows(res, key) if "skipped" in r]


def _header(res: dict[str, Any], name: str) -> list[str]:
    """The title, the machine and software, the load, a partial run's note and the run's notes."""
    hw = res.get("hardware", {})
    lines = [f"### {name or res.get('suite', '')} suite: {hw.get('cpu_model', '')} / {hw.get('device_kind', '')}", ""]
    lines.append(f"{hw.get('cpu_count')} CPUs, jax {hw.get('jax')} ({hw.get('backend')}), "
                 f"flax {hw.get('flax', '-')}, python {hw.get('python')}; created {res.get('created')}; "
                 f"load average at start {hw.get('load_avg')} / end {res.get('load_avg_end')} "
                 f"(1, 5, 15 min); XLA_FLAGS='{hw.get('xla_flags', '')}'. Weights: "
                 + ("; ".join(f"{k}: {v}" for k, v in (res.get("variables") or {}).items()) or "not recorded") + ".")
    if res.get("partial"):
        done = ", ".join(f"{k} ({v:.0f} s)" for k, v in (res.get("section_seconds") or {}).items())
        lines.append("")
        measured = res.get("section_seconds") or {}
        missing = ", ".join(s for s in res.get("options", {}).get("sections", []) if s not in measured)
        lines.append(f"**Partial run**: stopped by its time limit after the sections {done}; the other sections "
                     f"({missing}) were not measured.")
    lines.append("")
    for note in res.get("notes", []):
        lines.append(f"- {note}")
    lines.append("")
    return lines


def _model_tables(res: dict[str, Any]) -> list[str]:
    """Ratios to peers, paired rounds, latency, the optimisation steps and end-to-end."""
    lines: list[str] = []
    ratio_rows = [[r["kind"], r["model"], r["variant"], r.get("input") or r.get("frame"), r["peer"],
                   r["ours_ms"], r["peer_ms"], r["ratio"]] for r in res.get("ratios", [])]
    if ratio_rows:
        lines += ["**seg_jax vs peers** (median ms; ratio = seg_jax / peer, < 1 is faster)", ""]
        lines += _table(["what", "model", "variant", "input/frame", "peer", "seg_jax ms", "peer ms", "ratio"],
                        ratio_rows)

    paired = [r for r in _rows(res, "paired") if "ratio" in r]
    if paired:
        lines += ["**Paired rounds vs peers** (alternating blocks of seg_jax and peer calls on the same frames; "
                  "ratio of the medians, and the range of the per-round ratios)", ""]
        lines += _table(["what", "input/frame", "seg_jax variant", "peer", "rounds x calls", "seg_jax ms", "peer ms",
                         "ratio", "per-round ratios"],
                        [[r["kind"], r.get("input") or r.get("frame"), r["variant"], r["peer"],
                          f"{r['rounds']} x {r['block']}", r["ours_ms"], r["peer_ms"], r["ratio"],
                          f"{r['round_ratio_min']:.2f}-{r['round_ratio_max']:.2f}"] for r in paired])
    lat = [r for r in _rows(res, "latency") if "median_ms" in r]
    if lat:
        lines += ["**Streaming latency, batch 1** (uint8 frame at the model input -> probabilities)", ""]
        lines += _table(["model", "input", "variant", "median ms", "p95 ms", "frames/s", "CPU ms/call", "compile s",
                         "iters", "load"],
                        [[r["model"], r["input"], r["variant"], r["median_ms"], r["p95_ms"], r["items_per_s"],
                          r.get("cpu_median_ms"), r.get("compile_s"), r["iters"], r.get("load_avg_after", [None])[0]]
                         for r in lat])
    abl = [r for r in _rows(res, "ablation") if "median_ms" in r]
    if abl:
        lines += ["**Optimisation steps** (mobilenet, batch 1, timed round-robin; each row adds one change)", ""]
        lines += _table(["step", "input", "median ms", "p95 ms", "CPU ms/call", "x vs flax", "x vs previous",
                         "max abs diff vs flax", "compile s"],
                        [[r["step"], r["input"], r["median_ms"], r["p95_ms"], r.get("cpu_median_ms"),
                          r["speedup_vs_flax"], r["speedup_vs_previous"], f"{r['max_abs_diff_vs_flax']:.1e}",
                          r.get("compile_s")] for r in abl])
    e2e = [r for r in _rows(res, "e2e") if "median_ms" in r]
    if e2e:
        lines += ["**End-to-end** (uint8 frame -> resize -> model -> guided-filter upsample [-> composite]; "
                  "'+decode': JPEG decode + step + alpha to host)", ""]
        lines += _table(["model", "frame", "model input", "variant", "median ms", "p95 ms", "frames/s",
                         "compile / first call s", "load"],
                        [[r["model"], r["frame"], r["input"], r["variant"], r["median_ms"], r["p95_ms"],
                          r["items_per_s"], r.get("compile_s"),
                          (r.get("load_avg_after") or [None])[0]] for r in e2e])
    return lines


def _batch_tables(res: dict[str, Any]) -> list[str]:
    """Large-batch throughput, training and the device data path."""
    lines: list[str] = []
    thr = [r for r in _rows(res, "throughput") if "median_ms" in r]
    if thr:
        lines += ["**Throughput, large batch**", ""]
        lines += _table(["model", "input", "batch", "variant", "frames/s", "median ms/batch", "compile s",
                         "peak device bytes"],
                        [[r["model"], r["input"], r["batch"], r["variant"], r["items_per_s"], r["median_ms"],
                          r.get("compile_s"), (r.get("peak_device_memory") or {}).get("peak_bytes_in_use")]
                         for r in thr])
    tr = [r for r in _rows(res, "train") if "median_ms" in r]
    if tr:
        lines += ["**Training** (Adam + Dice, jitted step, state donated)", ""]
        lines += _table(["model", "dtype", "input", "batch", "examples/s", "frames/s", "ms/step", "compile s", "step"],
                        [[r["model"], r["dtype"], r["input"], r["batch"], r["examples_per_s"], r["items_per_s"],
                          r["median_ms"], r.get("compile_s"), r.get("impl")] for r in tr])
    dp = [r for r in _rows(res, "datapath") if "examples_per_s" in r]
    if dp:
        lines += ["**Device data path** (batches drawn and augmented on the device; a clip counts as one example)", ""]
        lines += _table(["model", "input", "batch", "data examples/s", "step examples/s", "data+step examples/s",
                         "data / step", "meets bar"],
                        [[r["model"], r["input"], r["batch"], r["data_examples_per_s"], r["step_examples_per_s"],
                          r["examples_per_s"], r["data_over_step"], r.get("meets_bar", "")] for r in dp])
    return lines


def _peer_tables(res: dict[str, Any]) -> list[str]:
    """The peers' own timings (MediaPipe, torchvision), or why they were skipped."""
    lines: list[str] = []
    peers = res.get("peers") or {}
    mp = peers.get("mediapipe")
    if mp:
        if mp.get("status") == "ok":
            lines += [f"**MediaPipe {mp.get('version')}** ({mp.get('what')})", ""]
            lines += _table(["model", "frame", "median ms", "p95 ms", "frames/s"],
                            [[r["model"], r["frame"], r["median_ms"], r["p95_ms"], r["items_per_s"]]
                             for r in mp["results"]])
        else:
            lines += [f"- MediaPipe peer skipped: {mp.get('reason')}", ""]
    for name in ("rvm", "modnet"):
        onnx_peer = peers.get(name)
        if onnx_peer and onnx_peer.get("status") == "ok":
            lines += [f"**{name}** ({onnx_peer.get('what')}; {onnx_peer.get('version')})", ""]
            lines += _table(["model", "frame", "median ms", "p95 ms", "frames/s"],
                            [[r["model"], r["frame"], r["median_ms"], r["p95_ms"], r["items_per_s"]]
                             for r in onnx_peer["results"]])
        elif onnx_peer:
            lines += [f"- {name} peer skipped: {onnx_peer.get('reason')}", ""]
    tv = peers.get("torchvision")
    if tv:
        if tv.get("status") == "ok":
            lines += [f"**torchvision LR-ASPP MobileNetV3-Large** (torch {tv.get('torch')}, {tv.get('device')})", ""]
            lines += _table(["mode", "dtype", "size", "batch", "median ms", "frames/s", "first call s"],
                            [[r["mode"], r["dtype"], r["size"], r["batch"], r["median_ms"], r["items_per_s"],
                              r["first_call_s"]] for r in tv["results"]])
        else:
            lines += [f"- torchvision peer skipped: {tv.get('reason')}", ""]
    return lines


def render(res: dict[str, Any], name: str = "") -> str:
    """One bench JSON (``python -m seg_jax.bench``) -> its markdown section."""
    lines = _header(res, name) + _model_tables(res) + _batch_tables(res) + _peer_tables(res)
    skips = sum((_skips(res, k) for k in ("latency", "e2e", "throughput", "train")), [])
    if skips:
        lines += ["Skipped:", ""] + skips + [""]
    for opt in res.get("optimizations", []):
        lines.append(f"- {opt}")
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.bench.report")
    p.add_argument("files", nargs="+")
    p.add_argument("--out", default="results/bench/BENCH.md")
    a = p.parse_args(argv)
    parts = ["# seg_jax benchmarks", "",
             "Generated by `python -m seg_jax.bench.report` from "
             + ", ".join(f"`{Path(f).name}`" for f in a.files)
             + ". Rerun with `python -m seg_jax.bench --suite cpu --out results/bench/bench-<host>.json`.", ""]
    for f in a.files:
        res = json.loads(Path(f).read_text())
        parts.append(render(res, Path(f).stem))
    text = "\n".join(parts)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
