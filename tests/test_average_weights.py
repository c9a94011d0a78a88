"""Checkpoint averaging: leaf-wise means of whole models, one clear line for a bad source."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seg_jax.convert.average_weights import average_variables

REPO = Path(__file__).resolve().parents[1]


def test_the_average_is_the_leafwise_mean_and_keeps_dtypes():
    a = {"params": {"w": np.zeros((2, 2), np.float32)}, "batch_stats": {"mean": np.ones(3, np.float32)}}
    b = {"params": {"w": np.full((2, 2), 4.0, np.float32)}, "batch_stats": {"mean": np.full(3, 3.0, np.float32)}}
    out = average_variables([a, b])
    np.testing.assert_array_equal(out["params"]["w"], 2.0)
    np.testing.assert_array_equal(out["batch_stats"]["mean"], 2.0)
    assert out["params"]["w"].dtype == np.float32
    with pytest.raises(ValueError, match="at least one"):
        average_variables([])


def test_a_missing_source_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "seg_jax.convert.average_weights", "--model", "mobilenet", "--out",
                           str(tmp_path / "avg"), "seg_jax/weights/mobilenet", str(tmp_path / "nope")], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "average_weights: error:" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "avg").exists()


def test_provenance_finds_a_workdirs_run_record_and_keeps_a_folders_training(tmp_path):
    from seg_jax.convert.average_weights import provenance
    records = tmp_path / "records"
    records.mkdir()
    (records / "other.json").write_text(json.dumps({"workdir": "workdirs/other", "steps": 1}))
    (records / "run.json").write_text(json.dumps({"workdir": "workdirs/run", "steps": 3100, "examples_seen": 24800,
                                                  "wall_time_hours": 1.6, "hardware": {"cpu": "Xeon"},
                                                  "commands": ["python -m seg_jax.train --workdir workdirs/run"]}))
    (records / "broken.json").write_text("{not json")
    workdir = {"model": {"name": "mobilenet"}, "checkpoint": "workdirs/run/checkpoints/best/1500",
               "config": {"data": {"source": "mixed", "weights": {"real": 0.4}, "image_size": [256, 256]}}}
    got = provenance("workdirs/run", workdir, records)
    assert got["checkpoint"] == "workdirs/run/checkpoints/best/1500"
    assert got["training"]["steps"] == 3100 and got["training"]["record"].endswith("run.json")
    assert got["data"]["image_size"] == [256, 256] and got["data"]["weights"] == {"real": 0.4}
    named_otherwise = provenance(str(Path("workdirs/run/checkpoints/best").resolve()), workdir, records)
    assert named_otherwise["training"]["steps"] == 3100
    folder = {"model": {"name": "mobilenet"}, "checkpoint": "workdirs/old/checkpoints/best/3000",
              "training": {"steps": 4800}, "data": {"source": "mixed"}, "averaged_from": [{"checkpoint": "a"}]}
    got = provenance("seg_jax/weights/mobilenet", folder, records)
    assert got["training"] == {"steps": 4800} and got["averaged_from"] == [{"checkpoint": "a"}]
    unknown = provenance("workdirs/gone", {"config": {}, "checkpoint": "workdirs/gone/checkpoints/best/1"}, records)
    assert unknown["training"] is None


def test_an_averaged_folder_is_written_with_its_sources_and_the_card_lists_them(tmp_path):
    from seg_jax.evaluation import model_card
    out = tmp_path / "avg"
    proc = subprocess.run([sys.executable, "-m", "seg_jax.convert.average_weights", "--model", "mobilenet", "--out",
                           str(out), "seg_jax/weights/mobilenet", "seg_jax/weights/mobilenet"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["averaged_from"]) == 2 and manifest["commands"][0].startswith(
        "python -m seg_jax.convert.average_weights --model mobilenet")
    shipped = json.loads((REPO / "seg_jax/weights/mobilenet/manifest.json").read_text())
    assert manifest["averaged_from"][0]["training"] == shipped.get("training")
    card = model_card.render(manifest, None, None, out)
    assert "Equal-weight average of 2 checkpoints" in card and "Source 2:" in card
