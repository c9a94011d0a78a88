"""``seg_jax.artifacts.ship``: a training workdir becomes a weights folder the Segmenter loads, and the run is
recorded."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from seg_jax.configs import apply_variant, get_default_config
from seg_jax.training.loop import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]


def test_ship_a_tiny_run_and_load_it(tmp_path):
    config = apply_variant(get_default_config(), "tiny")
    config.model.name = "mobilenet"
    config.num_steps = 2
    config.ema_decay = 0.9          # the shipped weights are the parameters' moving average
    workdir = tmp_path / "run"
    state = train_and_evaluate(config, workdir, progress=False)["state"]
    out, results = tmp_path / "weights", tmp_path / "results"
    proc = subprocess.run([sys.executable, "-m", "seg_jax.artifacts.ship", "--workdir", str(workdir),
                           "--model", "mobilenet",
                           "--input_size", "64x64", "--out", str(out), "--results_dir", str(results),
                           "--record_name", "mobilenet_tiny", "--command", "tiny run"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input_size"] == [64, 64] and manifest["sha256"] and manifest["training"]["steps"] == 2
    record = json.loads((results / "mobilenet_tiny.json").read_text())
    assert record["steps"] == 2 and record["commands"] == ["tiny run"] and record["best_val"] is not None
    from flax import serialization, traverse_util
    shipped = serialization.msgpack_restore((out / "variables.msgpack").read_bytes())
    key = next(k for k in traverse_util.flatten_dict(state.params) if k[-1] == "kernel")
    flat_shipped = traverse_util.flatten_dict(shipped["params"])
    np.testing.assert_array_equal(flat_shipped[key], np.asarray(traverse_util.flatten_dict(state.ema_params)[key]))
    assert not np.array_equal(flat_shipped[key], np.asarray(traverse_util.flatten_dict(state.params)[key]))
    assert manifest["weights"] == "moving average"
    from seg_jax.artifacts.ship import ship
    raw = ship(workdir, "mobilenet", (64, 64), tmp_path / "raw", results_dir=tmp_path / "r2", average=False)
    raw_params = traverse_util.flatten_dict(serialization.msgpack_restore((raw / "variables.msgpack").read_bytes())
                                            ["params"])
    np.testing.assert_array_equal(raw_params[key], np.asarray(traverse_util.flatten_dict(state.params)[key]))
    from seg_jax.artifacts.model_io import read_weights
    _, latest = read_weights(workdir / "checkpoints" / "latest")
    assert "/checkpoints/latest/" in latest["checkpoint"]
    import seg_jax
    alpha = seg_jax.Segmenter("mobilenet", checkpoint=out).step(np.zeros((48, 64, 3), np.uint8))
    assert alpha.shape == (48, 64)
    bad = subprocess.run([sys.executable, "-m", "seg_jax.artifacts.ship", "--workdir", str(tmp_path / "none"),
                          "--model", "mobilenet", "--out", str(tmp_path / "w2")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "seg_jax.artifacts.ship: error" in bad.stderr and "Traceback" not in bad.stderr


def test_training_record_best_is_the_row_that_picked_the_best_checkpoint(tmp_path):
    """Per-source selection: the record's best_val is the lowest selection_loss, not the lowest pooled loss."""
    from seg_jax.artifacts.ship import training_record
    rows = [{"step": s, "split": "train", "time": 100.0 + s, "loss": 0.5} for s in (1, 2, 3, 4)]
    rows += [{"step": 2, "split": "val", "time": 103.0, "dice_loss": 0.08, "selection_loss": 0.20},
             {"step": 4, "split": "val", "time": 105.0, "dice_loss": 0.09, "selection_loss": 0.18}]
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "config.json").write_text(json.dumps({"model": {"name": "mobilenet"}, "batch_size": 8}))
    record = training_record(tmp_path)
    assert record["best_val"]["step"] == 4 and record["last_val"]["step"] == 4 and record["examples_seen"] == 32
    for r in rows:
        r.pop("selection_loss", None)     # runs from before per-source selection: the pooled loss decides
    (tmp_path / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    assert training_record(tmp_path)["best_val"]["step"] == 2
