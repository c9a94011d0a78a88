"""``python -m seg_jax.bench.onnx_fps``: frames per second of the JAX-free ONNX runner beside ``seg_jax.live``.

Both blur the background of the bundled clip (``--source sample --mode blur``, output to a temporary video),
each in its own process, alternating for ``--rounds`` rounds so that load on a shared machine drifts onto both
alike; the JSON keeps every round's end-to-end and model/segment rates and their medians. The two loops are
not the same work: ``seg_jax.live`` runs the BatchNorm-folded JAX network with the guided-filter upsampling and
its compositing on XLA; ``seg_jax.onnx.live`` runs the exported graph in onnxruntime with OpenCV resizing and
NumPy compositing. Both exclude the first frame (compilation / session set-up) from their rates.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from seg_jax.artifacts.weights_folder import shipped_weights_dir
from seg_jax.bench.timing import hardware, load_average
from seg_jax.models.registry import MODEL_NAMES
from seg_jax.onnx.export import export_onnx

ONNX_LINE = re.compile(r"([\d.]+) fps end-to-end .*?([\d.]+) fps model alone at (\d+x\d+)")
JAX_LINE = re.compile(r"([\d.]+) fps end-to-end .*?([\d.]+) fps segment\+composite")


def _run(cmd: list[str], pattern: re.Pattern, timeout: float) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    text = res.stdout + res.stderr
    m = pattern.search(text)
    if res.returncode != 0 or m is None:
        raise RuntimeError(f"{' '.join(cmd[2:4])} failed (exit {res.returncode}): {text.strip()[-300:]}")
    return {"fps": float(m.group(1)), "model_fps": float(m.group(2))}


def measure(model: str, rounds: int, max_frames: int | None, timeout: float = 600) -> dict:
    """Alternating rounds of the ONNX runner and seg_jax.live on the sample clip; returns the JSON record."""
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model, Path(tmp) / f"{model}.onnx")
        limit = ["--max-frames", str(max_frames)] if max_frames else []
        onnx_cmd = [sys.executable, "-m", "seg_jax.onnx_live", "--onnx", str(onnx_path), "--source", "sample",
                    "--mode", "blur", "--output", str(Path(tmp) / "onnx.mp4")] + limit
        jax_cmd = [sys.executable, "-m", "seg_jax.live", "--source", "sample", "--mode", "blur", "--model", model,
                   "--output", str(Path(tmp) / "jax.mp4"), "--no-window"] + limit
        runs: dict[str, list] = {"onnxruntime": [], "jax": []}
        for _ in range(rounds):
            runs["onnxruntime"].append(_run(onnx_cmd, ONNX_LINE, timeout))
            runs["jax"].append(_run(jax_cmd, JAX_LINE, timeout))
    summary = {k: {"fps_median": statistics.median(r["fps"] for r in v),
                   "model_fps_median": statistics.median(r["model_fps"] for r in v), "rounds": v}
               for k, v in runs.items()}
    return {"schema": "seg_jax.bench.onnx_fps/1", "model": model, "source": "sample (640x360)", "mode": "blur",
            "max_frames": max_frames, "hardware": hardware(), "load_average_end": load_average(),
            "meaning": {"fps": "end-to-end frames per second, decode and video write included",
                        "model_fps": "onnxruntime: the model call alone (with its resizes); jax: segment + "
                                     "composite (seg_jax.live's process rate)"},
            "results": summary}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.bench.onnx_fps", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenet", choices=[n for n in MODEL_NAMES if shipped_weights_dir(n).exists()])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--max-frames", type=int, default=None, help="frames per run (default: the whole clip)")
    p.add_argument("--out", help="JSON path (default results/bench/onnx-fps-cpu-<model>.json; not a seg_jax.bench "
                                 "schema)")
    args = p.parse_args(argv)
    try:
        record = measure(args.model, args.rounds, args.max_frames)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as e:
        print(f"seg_jax.bench.onnx_fps: {e}", file=sys.stderr)
        return 1
    out = Path(args.out or f"results/bench/onnx-fps-cpu-{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    for name, r in record["results"].items():
        print(f"{name:12s} {r['fps_median']:6.1f} fps end-to-end, {r['model_fps_median']:6.1f} fps model/process")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
