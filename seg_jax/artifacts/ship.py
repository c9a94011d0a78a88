"""Turn a training workdir into shipped inference weights with a manifest, and record the run.

  python -m seg_jax.artifacts.ship --workdir runs/mobilenet_cpu --model mobilenet --input_size 224x224

writes ``seg_jax/weights/<model>/{variables.msgpack,manifest.json}`` (loaded by default by ``seg_jax.live``,
``seg_jax.Segmenter`` and ``seg_jax.evaluation.evaluate``) and ``results/training/<model>.json`` (config, steps, wall
time, hardware, final validation metrics, the commands that produced the run).
"""
from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any, Mapping, Sequence

from seg_jax.artifacts import model_io, weights_folder
from seg_jax.bench import cpuinfo
from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import write_json
from seg_jax.inference.sizes import parse_size
from seg_jax.models import get_spec
from seg_jax.training import checkpointing
from seg_jax.training.metric_writer import read_metrics


def training_record(workdir: Path, commands: Sequence[str] = ()) -> dict[str, Any]:
    """Summary of a run from its workdir: config, steps, wall time, last/best validation metrics."""
    rows = read_metrics(workdir)
    train = [r for r in rows if r["split"] == "train"]
    val = [r for r in rows if r["split"] == "val"]
    if not train:
        raise ValueError(f"{workdir}/metrics.jsonl has no training rows; is this a training workdir?")
    # Wall time: sum of the gaps between consecutive logged steps, minus pauses between resumed sessions.
    wall, gaps = 0.0, [b["time"] - a["time"] for a, b in zip(train, train[1:])]
    typical = sorted(gaps)[len(gaps) // 2] if gaps else 0.0
    wall = sum(g for g in gaps if g < 20 * max(typical, 1e-3))
    # the row the training loop's best checkpoint came from: its selection_loss (older runs logged dice_loss only)
    best = min(val, key=lambda r: r.get("selection_loss", r["dice_loss"])) if val else None
    config = json.loads((workdir / "config.json").read_text())
    return {
        "workdir": str(workdir), "model": config["model"], "config": config,
        "steps": max(r["step"] for r in train), "examples_seen": max(r["step"] for r in train) * config["batch_size"],
        "wall_time_hours": wall / 3600, "hardware": {"machine": platform.machine(), "cpu": _cpu_name()},
        "best_val": best, "last_val": val[-1] if val else None, "commands": list(commands),
    }


def trained_cells_record(record: Mapping[str, Any]) -> dict:
    """The manifest's ``cells`` entry of a model-3 training run (schema: :mod:`seg_jax.artifacts.manifest_schema`):
    the command, the data, the clip length T the cells were back-propagated through, and the steps."""
    data = record["config"]["data"]
    return {"kind": "trained", "command": "; ".join(record.get("commands") or []) or "unrecorded",
            "data": f"{data['source']} (root {data.get('root') or '-'}, weights {json.dumps(data.get('weights'))})",
            "sequence_length": int(data.get("clip_length", 1) or 1), "steps": int(record["steps"])}


def _cpu_name() -> str:
    return cpuinfo.cpu_model() or platform.processor()


def ship(workdir: str | Path, model_name: str, input_size: Sequence[int], out_dir: str | Path | None = None,
         results_dir: str | Path = "results/training", commands: Sequence[str] = (), keep_aspect: bool = True,
         record_name: str | None = None, average: bool = True) -> Path:
    """Export the best checkpoint of ``workdir`` (or ``<workdir>/checkpoints/latest``) as shipped weights; returns
    the weights folder. The run's
    record goes to ``<results_dir>/<record_name or model_name>.json``."""
    workdir = Path(workdir)
    variables, info = model_io.load_weights(model_name, workdir, average=average)
    # '<run>/checkpoints/latest' (or best) ships that checkpoint; the record is the run's
    record = training_record(checkpointing.split_checkpoint_path(workdir)[0], commands)
    model_config = dict(info["model"])
    model_config["depthwise_impl"] = "auto"  # the runtime picks the fastest form per backend
    out = Path(out_dir) if out_dir else weights_folder.shipped_weights_dir(model_name)
    extra = {
        "input_size": [int(v) for v in input_size],
        "keep_aspect": bool(keep_aspect),
        "input": "RGB float in [0, 1] (uint8 / 255), NHWC; the Segmenter does this for you",
        "output": "logits (N, H, W, 1); sigmoid -> person probability",
        "checkpoint": info["checkpoint"],
        "weights": "moving average" if average and record["config"].get("ema_decay") else "raw parameters",
        "data": {"root": record["config"]["data"].get("root"), "source": record["config"]["data"]["source"],
                 "weights": record["config"]["data"].get("weights"),
                 "image_size": record["config"]["data"]["image_size"]},
        "training": {k: record[k] for k in ("steps", "examples_seen", "wall_time_hours", "hardware", "commands")},
        "metrics": {"best_val": record["best_val"]},
    }
    settle = int(record["config"].get("settle_steps", 0) or 0)
    if settle and get_spec(model_name).temporal:
        extra["settle_steps"] = settle  # trained settled, so it streams settled
    if get_spec(model_name).temporal:
        extra["cells"] = trained_cells_record(record)
    weights_folder.save_weights(out, model_config, variables, extra)
    write_json(Path(results_dir) / f"{record_name or model_name}.json", record, option="--results_dir")
    return out


def main(argv=None) -> None:
    from absl import app, flags
    flags.DEFINE_string("workdir", None, "Training workdir (its best checkpoint is shipped; "
                        "<workdir>/checkpoints/latest ships the latest).")
    flags.DEFINE_string("model", None, "Model name of the run: mobilenet | convlstm | unet.")
    flags.DEFINE_string("input_size", "256x256", "Default inference size HxW written to the manifest.")
    flags.DEFINE_string("out", None, "Weights folder (default seg_jax/weights/<model>).")
    flags.DEFINE_string("results_dir", "results/training", "Where the training record <model>.json is written.")
    flags.DEFINE_bool("keep_aspect", True, "Whether the Segmenter adapts the input size to the frame's aspect "
                      "(False for models trained on squashed square crops).")
    flags.DEFINE_multi_string("command", [], "Command(s) that produced the run, recorded in the manifest.")
    flags.DEFINE_string("record_name", None, "File name (no .json) of the run's record (default: the model name).")
    flags.DEFINE_bool("average", True, "Ship the moving average of the parameters where the run kept one "
                      "(config.ema_decay); --noaverage ships the raw parameters (for the EMA ablation).")
    flags.mark_flags_as_required(["workdir", "model"])

    def run(_):
        from absl import logging

        logging.set_verbosity(logging.WARNING)
        f = flags.FLAGS
        try:
            size = parse_size(f.input_size, flag="input_size")
            out = ship(f.workdir, f.model, size, f.out, results_dir=f.results_dir, commands=f.command,
                       keep_aspect=f.keep_aspect, record_name=f.record_name, average=f.average)
        except (FileNotFoundError, ValueError) as e:
            fail("seg_jax.artifacts.ship", str(e))
        print(f"shipped {f.model} weights to {out}")

    app.run(run, argv=argv)


if __name__ == "__main__":
    main()
