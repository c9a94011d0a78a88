"""Average the variables of several checkpoints of one model into a weights folder (checkpoint averaging).

    python -m seg_jax.convert.average_weights --model mobilenet --out runs/avg \\
        workdirs/run workdirs/run/checkpoints/latest

Every source is anything :func:`seg_jax.artifacts.model_io.read_weights` takes (a weights folder, a training workdir
= its
best checkpoint, ``<workdir>/checkpoints/latest``); parameters and BatchNorm statistics are averaged leaf by leaf
with equal weights. The manifest's ``averaged_from`` lists each source with how it was trained: a weights folder's
own ``training``/``data`` record, or for a workdir the run's record in ``results/training/`` (the one whose
``workdir`` matches) and its config's data mix; ``seg_jax.evaluation.model_card`` renders that list.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import jax
import numpy as np

from seg_jax.artifacts import model_io, weights_folder
from seg_jax.inference.sizes import parse_size


def average_variables(variables: Sequence[dict]) -> dict:
    """The leaf-wise mean of pytrees of the same structure ({'params', 'batch_stats'})."""
    if not variables:
        raise ValueError("nothing to average: give at least one checkpoint")
    return jax.tree_util.tree_map(lambda *leaves: np.mean([np.asarray(x, np.float32) for x in leaves], axis=0)
                                  .astype(np.asarray(leaves[0]).dtype), *variables)


def _run_record(workdir: Path, records_dir: Path) -> Optional[dict]:
    """The ``records_dir`` record (``seg_jax.artifacts.ship.training_record``) whose ``workdir`` is ``workdir``,
    or None."""
    workdir = workdir.resolve()
    for path in sorted(records_dir.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("workdir") and Path(record["workdir"]).resolve() == workdir:
            return {**record, "record": str(path)}
    return None


def provenance(source: str, manifest: dict, records_dir: Path = Path("results/training")) -> dict[str, Any]:
    """How one averaged source was trained: {"source", "checkpoint", "training", "data"} (missing parts None).

    ``manifest`` is what :func:`seg_jax.artifacts.model_io.read_weights` returned for ``source``: a weights folder's
    manifest carries its ``training`` and ``data``; a workdir's carries its ``config`` and ``checkpoint``, and the
    training summary comes from the run's record in ``records_dir``.
    """
    checkpoint = manifest.get("checkpoint") or str(source)
    training, data = manifest.get("training"), manifest.get("data")
    if "config" in manifest:  # a training workdir
        from seg_jax.training import checkpointing  # orbax: loaded only when a workdir is averaged
        record = _run_record(checkpointing.split_checkpoint_path(source)[0], records_dir)
        if record is not None:
            training = {k: record.get(k) for k in ("steps", "examples_seen", "wall_time_hours", "hardware",
                                                   "commands", "record")}
        cfg = manifest["config"].get("data") or {}
        data = {k: cfg.get(k) for k in ("root", "source", "weights", "image_size")}
    out = {"source": str(source), "checkpoint": checkpoint, "training": training, "data": data}
    if manifest.get("averaged_from"):  # the source is itself an average: keep its sources
        out["averaged_from"] = manifest["averaged_from"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.convert.average_weights", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="weights folders, training workdirs or <workdir>/checkpoints/latest")
    p.add_argument("--model", required=True, help="mobilenet | convlstm | unet")
    p.add_argument("--out", required=True, help="weights folder to write")
    p.add_argument("--input_size", default="256x256", help="default inference size HxW for the manifest")
    a = p.parse_args(argv)
    try:
        size = parse_size(a.input_size, flag="input_size")
        loaded = [model_io.load_weights(a.model, s) for s in a.sources]
    except (FileNotFoundError, ValueError) as e:
        print(f"seg_jax.convert.average_weights: error: {e}", file=sys.stderr)
        return 2
    averaged = average_variables([v for v, _ in loaded])
    model_config = dict(loaded[0][1].get("model") or {"name": a.model}, name=a.model, depthwise_impl="auto")
    extra = {"input_size": [int(v) for v in size], "keep_aspect": True,
             "input": "RGB float in [0, 1] (uint8 / 255), NHWC; the Segmenter does this for you",
             "output": "logits (N, H, W, 1); sigmoid -> person probability",
             "averaged_from": [provenance(s, info) for s, (_, info) in zip(a.sources, loaded)],
             "commands": ["python -m seg_jax.convert.average_weights " + " ".join(argv if argv is not None
                                                                                    else sys.argv[1:])]}
    out = weights_folder.save_weights(Path(a.out), model_config, averaged, extra)
    print(f"averaged {len(loaded)} checkpoints of {a.model} into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
