"""The sweep runner behind ``python -m seg_jax.ablations`` (see the package docstring for the sweep format)."""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import ml_collections

from seg_jax.artifacts.model_io import load_weights
from seg_jax.configs import apply_variant
from seg_jax.evaluation.evaluate import evaluate_resized
from seg_jax.training.loop import train_and_evaluate
from seg_jax.training.metric_writer import read_metrics

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_METRICS = ("dice", "iou", "mad", "boundary_f", "dice_loss")
LOWER_IS_BETTER = {"dice_loss", "mad", "mse"}


# -- loading ------------------------------------------------------------------------------------------------
def _resolve(path: str) -> Path:
    p = Path(path)
    if p.exists() or p.is_absolute():
        return p
    if (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    raise FileNotFoundError(f"{path} does not exist (looked in {Path.cwd()} and {REPO_ROOT})")


def _split_spec(spec: str) -> tuple[Path, str | None]:
    """'configs/x.py:tiny' -> (path, 'tiny'); 'configs/x.py' -> (path, None)."""
    head, sep, arg = spec.rpartition(":")
    if sep and head.endswith(".py"):
        return _resolve(head), (arg or None)
    return _resolve(spec), None


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(f"_seg_jax_cfg_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_config(spec: str | ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A training config from ``'configs/mobilenet.py[:variant]'`` (or a copy of a ConfigDict)."""
    if isinstance(spec, ml_collections.ConfigDict):
        return ml_collections.ConfigDict(spec.to_dict())
    path, arg = _split_spec(spec)
    return _load_module(path).get_config(arg)


def load_sweep(spec: str) -> dict[str, Any]:
    """The dict returned by ``get_sweep(arg)`` of a sweep file ``'configs/ablations/x.py[:arg]'``."""
    path, arg = _split_spec(spec)
    module = _load_module(path)
    if not hasattr(module, "get_sweep"):
        raise ValueError(f"{path} defines no get_sweep(arg=None); see `python -m seg_jax.ablations --help`")
    sweep = dict(module.get_sweep(arg))
    if not sweep.get("runs"):
        raise ValueError(f"{path}: get_sweep() returned no 'runs'")
    sweep.setdefault("title", path.stem)
    sweep["file"] = str(path)
    return sweep


def _coerce(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def set_dotted(config: ml_collections.ConfigDict, key: str, value: Any) -> None:
    """``set_dotted(c, 'data.clip_length', 2)``; unknown keys raise (typos must not be silent)."""
    *parents, leaf = key.split(".")
    node = config
    for p in parents:
        if p not in node:
            raise KeyError(f"unknown config key {key!r} (no {p!r})")
        node = node[p]
    if leaf not in node:
        raise KeyError(f"unknown config key {key!r}")
    node[leaf] = _coerce(value)


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """['num_steps=10', 'data.root=/x'] -> {'num_steps': 10, 'data.root': '/x'} (Python literals, else str)."""
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects key=value, got {item!r}")
        try:
            out[key.strip()] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            out[key.strip()] = raw
    return out


def build_run_config(sweep: Mapping[str, Any], run_name: str, *, tiny: bool = False,
                     extra: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
    """The training config of one run (see the package docstring for the order overrides apply in)."""
    config = load_config(sweep["base"])
    if tiny:
        apply_variant(config, "tiny")
    else:
        for k, v in dict(sweep.get("base_overrides") or {}).items():
            set_dotted(config, k, v)
    for k, v in dict(sweep["runs"][run_name]).items():
        set_dotted(config, k, v)
    for k, v in dict(extra or {}).items():
        set_dotted(config, k, v)
    return config


# -- one run ------------------------------------------------------------------------------------------------
def evaluate_workdir(config: ml_collections.ConfigDict, workdir: Path, split: str,
                     subsets: Sequence[str | None]) -> dict[str, dict[str, float]]:
    """The best checkpoint of ``workdir`` on ``split`` with the paper's resized protocol, per subset."""

    variables, _ = load_weights(config.model.name, workdir)
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.data.augment = False
    cfg.max_eval_examples = 0
    return {subset or "all": {k: float(v) for k, v in
                              evaluate_resized(config.model.name, variables, cfg, split, subset).items()}
            for subset in subsets}


def _val_curve(workdir: Path) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r["dice_loss"])) for r in read_metrics(workdir)
            if r.get("split") == "val" and "dice_loss" in r]


def run_one(sweep: Mapping[str, Any], run_name: str, out: Path, *, tiny: bool = False,
            extra: Mapping[str, Any] | None = None, progress: bool = False, log=print) -> dict[str, Any]:
    """Train (or resume, or skip when finished) and evaluate one run; returns its result dict."""
    config = build_run_config(sweep, run_name, tiny=tiny, extra=extra)
    workdir = out / "runs" / run_name
    result_path = workdir / "result.json"
    config_dict = json.loads(config.to_json_best_effort())
    if result_path.exists():
        previous = json.loads(result_path.read_text())
        if previous.get("config") == config_dict:
            log(f"[ablations] {run_name}: finished earlier, skipped ({result_path})")
            return previous
        log(f"[ablations] {run_name}: config changed since the last run; training again in {workdir}")
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"[ablations] {run_name}: training {config.model.name} for {config.num_steps} steps in {workdir}")
    t0 = time.time()
    summary = train_and_evaluate(config, workdir, progress=progress)
    train_s = time.time() - t0
    t1 = time.time()
    split = sweep.get("eval_split", "val")
    subsets = list(sweep.get("eval_subsets") or [None]) if not tiny else [None]
    evaluation = evaluate_workdir(config, workdir, split, subsets)
    result = {
        "name": run_name,
        "overrides": {k: _coerce(v) for k, v in dict(sweep["runs"][run_name]).items()},
        "model": config.model.name,
        "steps": int(summary["step"]),
        "status": summary["status"],
        "best_val_loss": float(summary["best_val_loss"]) if math.isfinite(summary["best_val_loss"]) else None,
        "train_seconds": round(train_s, 1),
        "eval_seconds": round(time.time() - t1, 1),
        "eval_split": split,
        "eval": evaluation,
        "val_curve": _val_curve(workdir),
        "config": config_dict,
    }
    result_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"[ablations] {run_name}: " + ", ".join(f"{s} dice={m['dice']:.4f}" for s, m in evaluation.items()))
    return result


# -- the sweep ----------------------------------------------------------------------------------------------
def run_sweep(sweep: Mapping[str, Any] | str, out: str | Path, *, tiny: bool = False, only: Sequence[str] = (),
              extra: Mapping[str, Any] | None = None, progress: bool = False, log=print) -> dict[str, Any]:
    """Run every (or ``only`` these) run(s) of a sweep, then write the results files into ``out``."""
    if isinstance(sweep, str):
        sweep = load_sweep(sweep)
    names = list(sweep["runs"])
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ValueError(f"unknown run(s) {unknown}; this sweep has {names}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = [run_one(sweep, n, out, tiny=tiny, extra=extra, progress=progress, log=log)
               for n in names if not only or n in only]
    return write_results(sweep, results, out, tiny=tiny, wall_seconds=time.time() - t0)


def _columns(sweep: Mapping[str, Any], results: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[str]]:
    subsets = list(results[0]["eval"]) if results else []
    present = set(results[0]["eval"][subsets[0]]) if subsets else set()
    metrics = [m for m in (sweep.get("metrics") or DEFAULT_METRICS) if m in present]
    return subsets, metrics


def to_markdown(sweep: Mapping[str, Any], results: Sequence[Mapping[str, Any]], *, tiny: bool = False) -> str:
    subsets, metrics = _columns(sweep, results)
    lines = [f"# Ablation: {sweep.get('title', '')}", ""]
    if tiny:
        lines += ["**Tiny smoke run** (synthetic 64x64 data, a few steps): the numbers mean nothing.", ""]
    if sweep.get("notes") and not tiny:
        lines += [str(sweep["notes"]).strip(), ""]
    split = results[0]["eval_split"] if results else sweep.get("eval_split", "val")
    lines += [f"Evaluated on the **{split}** split (the paper's resized protocol, best checkpoint of each run). "
              f"Arrows: {', '.join(f'{m} ' + ('lower' if m in LOWER_IS_BETTER else 'higher') for m in metrics)} "
              f"is better.", ""]
    head = ["run", "overrides", "steps"] + [f"{s} {m}" for s in subsets for m in metrics] + ["train min"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    best = {}
    for s in subsets:
        for m in metrics:
            vals = [r["eval"][s][m] for r in results]
            best[(s, m)] = (min if m in LOWER_IS_BETTER else max)(vals)
    for r in results:
        ov = ", ".join(f"`{k}={v}`" for k, v in r["overrides"].items()) or "(base)"
        cells = [r["name"], ov, str(r["steps"])]
        for s in subsets:
            for m in metrics:
                v = r["eval"][s][m]
                txt = f"{v:.4f}"
                cells.append(f"**{txt}**" if len(results) > 1 and v == best[(s, m)] else txt)
        cells.append(f"{r['train_seconds'] / 60:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def plot_results(sweep: Mapping[str, Any], results: Sequence[Mapping[str, Any]], path: Path, *,
                 tiny: bool = False) -> None:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np
    subsets, metrics = _columns(sweep, results)
    metrics = [m for m in metrics if m != "dice_loss"][:3] or metrics[:1]
    n = len(metrics) + 1
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.4))
    names = [r["name"] for r in results]
    width = 0.8 / max(len(subsets), 1)
    for ax, m in zip(axes, metrics):
        x = np.arange(len(names))
        for i, s in enumerate(subsets):
            ax.bar(x + i * width - 0.4 + width / 2, [r["eval"][s][m] for r in results], width, label=s)
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=20, ha="right")
        ax.set_title(m + (" (lower better)" if m in LOWER_IS_BETTER else ""))
        ax.margins(y=0.25)
        if len(subsets) > 1:
            ax.legend(fontsize=7, loc="upper center", ncol=len(subsets), frameon=False)
    ax = axes[-1]
    for r in results:
        if r.get("val_curve"):
            steps, vals = zip(*r["val_curve"])
            ax.plot(steps, vals, marker="o", ms=3, label=r["name"])
    ax.set_title("val dice_loss during training")
    ax.set_xlabel("step")
    ax.legend(fontsize=7)
    fig.suptitle(("[tiny smoke run] " if tiny else "") + str(sweep.get("title", "")))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_results(sweep: Mapping[str, Any], results: Sequence[Mapping[str, Any]], out: str | Path, *,
                  tiny: bool = False, wall_seconds: float | None = None) -> dict[str, Any]:
    import platform
    out = Path(out)
    try:
        import jax
        backend = f"{jax.default_backend()} x{jax.device_count()}"
    except Exception:  # pragma: no cover
        backend = "unknown"
    doc = {
        "title": sweep.get("title"),
        "sweep_file": sweep.get("file"),
        "tiny": tiny,
        "notes": None if tiny else sweep.get("notes"),
        "hardware": {"backend": backend, "machine": platform.machine(), "processor": platform.processor()},
        "wall_seconds": None if wall_seconds is None else round(wall_seconds, 1),   # this invocation
        "run_seconds": round(sum(r["train_seconds"] + r["eval_seconds"] for r in results), 1),  # all runs, when run
        "runs": [{k: v for k, v in r.items() if k != "config"} for r in results],
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (out / "results.md").write_text(to_markdown(sweep, results, tiny=tiny))
    plot_results(sweep, results, out / "results.png", tiny=tiny)
    return doc


def preflight(out: str | Path, *, overwrite: bool = False) -> None:
    """Checks made before any training, each a one-line ``ValueError`` naming the fix: the optional packages the
    results need (the plot), and an ``out`` that would overwrite the committed results under ``results/``."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("the results plot needs matplotlib, which is not installed: pip install -e '.[plots]' "
                         "(or '.[dev]')")
    out = Path(out).resolve()
    committed = (REPO_ROOT / "results").resolve()
    if not overwrite and (out / "results.json").exists() and (out == committed or committed in out.parents):
        raise ValueError(f"--out {out} holds committed results; write to a new folder (e.g. runs/ablations/"
                         f"{out.name}) and compare, or pass --overwrite to replace them")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m seg_jax.ablations", description=__doc__.splitlines()[0],
                                     epilog="Sweep file format: see `python -c 'import seg_jax.ablations as a; "
                                            "help(a)'`.")
    parser.add_argument("--sweep", required=True, help="configs/ablations/<name>.py[:arg]")
    parser.add_argument("--out", required=True, help="output folder (runs/<name>/ workdirs + results.*)")
    parser.add_argument("--tiny", action="store_true", help="shrink every run to the tiny variant (tests, smoke)")
    parser.add_argument("--only", default="", help="comma-separated run names to (re)run; default all")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field in every run, e.g. --set num_steps=50 (repeatable)")
    parser.add_argument("--progress", action="store_true", help="show a progress bar per run")
    parser.add_argument("--overwrite", action="store_true",
                        help="allow an --out under results/ that already holds results (committed numbers)")
    args = parser.parse_args(argv)
    from absl import flags
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # Grain reads absl flags
    try:
        preflight(args.out, overwrite=args.overwrite)
        sweep = load_sweep(args.sweep)
        doc = run_sweep(sweep, args.out, tiny=args.tiny, only=[s for s in args.only.split(",") if s],
                        extra=parse_set(args.set), progress=args.progress)
    except (FileNotFoundError, KeyError, ValueError) as e:
        print(f"seg_jax.ablations: error: {e}", file=sys.stderr)
        sys.exit(2)
    print((Path(args.out) / "results.md").read_text())
    print(f"seg_jax.ablations: wrote {args.out}/results.json, results.md, results.png "
          f"({len(doc['runs'])} runs, {doc['run_seconds']} s of training + evaluation)")
