"""Same alpha before and after a change to the inference path: the shipped weights on real DAVIS frames.

``dump OUT``: the alpha (H, W) of the first frame of the first three DAVIS clips and of a 480x640 crop (4:3),
one stream each, through ``Segmenter("mobilenet")``, ``Segmenter("convlstm")`` (float32 1x1 products, so the
comparison does not depend on the CPU's bfloat16 support), the Flax model (``fast=False``) and the JAX-free ONNX
runner on freshly exported graphs; also the ONNX runner's inference sizes. ``compare BEFORE AFTER``: the largest
|difference| per runner, as JSON (and Markdown with ``--md``).

Run the dump against the code before the change as a script, so ``seg_jax`` comes from that tree::

    git archive <before> | tar -x -C /tmp/before
    PYTHONPATH=/tmp/before python research/walk_equality.py dump workdirs/alpha/before
    PYTHONPATH=. python research/walk_equality.py dump workdirs/alpha/after
    python research/walk_equality.py compare workdirs/alpha/before workdirs/alpha/after --refs '<before> -> <after>' \
        --json results/bench/walk-equality.json --md results/bench/walk-equality.md
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

RUNNERS = ("seg_mobilenet", "seg_convlstm", "flax_mobilenet", "flax_convlstm", "onnx_mobilenet", "onnx_convlstm")


def frames(root: str) -> list[np.ndarray]:
    import cv2
    paths = sorted(glob.glob(f"{root}/*/frames/00000.jpg"))[:3]
    if not paths:
        raise SystemExit(f"no DAVIS frames under {root}/*/frames/; pass --davis")
    images = [cv2.imread(p)[..., ::-1].copy() for p in paths]
    return images + [images[0][:480, 100:740].copy()]


def dump(out: Path, root: str) -> None:
    import seg_jax
    from seg_jax import Segmenter
    from seg_jax.onnx.export import export_onnx
    from seg_jax.onnx.runtime import OnnxSegmenter
    out.mkdir(parents=True, exist_ok=True)
    images = frames(root)
    print(f"seg_jax from {seg_jax.__file__}; frames {[i.shape[:2] for i in images]}", file=sys.stderr)
    for name in ("mobilenet", "convlstm"):
        for kind, fast in (("seg", True), ("flax", False)):
            seg = Segmenter(name, dot_dtype="float32", fast=fast)
            for k, image in enumerate(images):
                np.save(out / f"{kind}_{name}_{k}.npy", seg.step(image))   # one stream: state carried
    with tempfile.TemporaryDirectory() as d:
        for name in ("mobilenet", "convlstm"):
            runner = OnnxSegmenter(export_onnx(name, Path(d) / f"{name}.onnx"))
            for k, image in enumerate(images):
                np.save(out / f"onnx_{name}_{k}.npy", runner.step(image))
            sizes = [list(runner.input_size_for(i.shape[:2])) for i in images]
            (out / f"onnx_{name}_sizes.json").write_text(json.dumps(sizes))


def hardware() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    return f"{os.cpu_count()}-core {model}, CPU, shared with other jobs"


def compare(before: Path, after: Path, refs: str = "") -> dict:
    rows = []
    for runner in RUNNERS:
        files = sorted(before.glob(f"{runner}_*.npy"))
        diffs = [float(np.abs(np.load(f) - np.load(after / f.name)).max()) for f in files]
        row = {"runner": runner, "frames": len(files), "max_abs_diff_per_frame": diffs}
        if runner.startswith("onnx"):
            row["sizes_before"] = json.loads((before / f"{runner}_sizes.json").read_text())
            row["sizes_after"] = json.loads((after / f"{runner}_sizes.json").read_text())
        rows.append(row)
    return {"what": "max |alpha after - alpha before| of the shipped weights on DAVIS frames (first frame of three "
                    "clips, then a 480x640 crop), one stream per runner", "code": refs, "hardware": hardware(),
            "results": rows}


def markdown(record: dict) -> str:
    lines = ["# Walk equality: the same alpha before and after a change to the inference path", "",
             record["what"] + ".", "",
             f"Code: {record['code']}. Hardware: {record['hardware']}.", "",
             "| runner | max abs diff per frame | ONNX sizes before -> after |", "|---|---|---|"]
    for r in record["results"]:
        sizes = f"{r['sizes_before']} -> {r['sizes_after']}" if "sizes_before" in r else ""
        lines.append(f"| {r['runner']} | {', '.join(f'{d:.3g}' for d in r['max_abs_diff_per_frame'])} | {sizes} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump")
    d.add_argument("out")
    d.add_argument("--davis", default="/work/shared/data/davis")
    c = sub.add_parser("compare")
    c.add_argument("before")
    c.add_argument("after")
    c.add_argument("--json")
    c.add_argument("--md")
    c.add_argument("--refs", default="", help="what before and after are, e.g. 'bd3e919 -> a9d2ffb'")
    a = p.parse_args(argv)
    if a.cmd == "dump":
        dump(Path(a.out), a.davis)
        return 0
    record = compare(Path(a.before), Path(a.after), a.refs)
    text = json.dumps(record, indent=2) + "\n"
    if a.json:
        Path(a.json).write_text(text)
    if a.md:
        Path(a.md).write_text(markdown(record))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
