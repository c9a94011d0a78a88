"""Ablation sweeps: config building, a 2-point tiny sweep end to end (results files, resume/skip), CLI errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from seg_jax.ablations import build_run_config, load_sweep, run_sweep, set_dotted
from seg_jax.ablations.sweep import parse_set

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "configs" / "ablations").glob("*.py"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_every_sweep_file_builds_its_configs(path):
    sweep = load_sweep(str(path))
    for name in sweep["runs"]:
        full = build_run_config(sweep, name)
        tiny = build_run_config(sweep, name, tiny=True)
        assert tiny.data.source == "synthetic" and tiny.num_steps == 4
        for key, value in sweep["runs"][name].items():   # the ablated axis survives --tiny
            node_full, node_tiny = full, tiny
            for part in key.split("."):
                node_full, node_tiny = node_full[part], node_tiny[part]
            want = tuple(value) if isinstance(value, list) else value
            assert node_full == want and node_tiny == want, (name, key)


def test_override_order_and_errors():
    sweep = load_sweep(str(REPO / "configs/ablations/clip_length.py:1,4"))
    assert list(sweep["runs"]) == ["T1", "T4"]
    c = build_run_config(sweep, "T4", extra={"num_steps": 7})
    assert (c.data.clip_length, c.batch_size, c.num_steps, c.data.image_size) == (4, 4, 7, (160, 160))
    with pytest.raises(KeyError, match="data.clip_lenght"):
        set_dotted(c, "data.clip_lenght", 2)
    assert parse_set(["num_steps=5", "data.root=/x/y", "data.image_size=(64, 64)"]) == {
        "num_steps": 5, "data.root": "/x/y", "data.image_size": (64, 64)}


def test_tiny_sweep_end_to_end_and_resume(tmp_path):
    sweep = str(REPO / "configs/ablations/loss.py")
    logs = []
    fast = {"num_steps": 2, "eval_every": 2, "checkpoint_every": 2}   # tiny is 4 steps; 2 keep the test short
    doc = run_sweep(sweep, tmp_path, tiny=True, extra=fast, log=logs.append)
    assert [r["name"] for r in doc["runs"]] == ["dice", "bce_dice"] and doc["tiny"]
    for f in ("results.json", "results.md", "results.png"):
        assert (tmp_path / f).stat().st_size > 0, f
    saved = json.loads((tmp_path / "results.json").read_text())
    for r in saved["runs"]:
        assert r["steps"] == 2 and 0.0 <= r["eval"]["all"]["dice"] <= 1.0 and r["val_curve"]
    md = (tmp_path / "results.md").read_text()
    assert "| dice | `loss=dice` | 2 |" in md and "| bce_dice | `loss=bce_dice` | 2 |" in md and "Tiny smoke run" in md
    assert (tmp_path / "results.png").read_bytes()[:4] == b"\x89PNG"

    logs.clear()  # a rerun skips the finished runs and rewrites the same table
    again = run_sweep(sweep, tmp_path, tiny=True, extra=fast, only=["bce_dice"], log=logs.append)
    assert any("finished earlier, skipped" in m for m in logs) and not any("training" in m for m in logs)
    assert again["runs"][0]["eval"] == saved["runs"][1]["eval"]


def test_cli_reports_bad_sweep_in_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("X = 1\n")
    proc = subprocess.run([sys.executable, "-m", "seg_jax.ablations", "--sweep", str(bad), "--out",
                           str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "defines no get_sweep" in proc.stderr and "Traceback" not in proc.stderr


def test_checks_before_any_training_name_the_extra_and_spare_committed_results(tmp_path, monkeypatch, capsys):
    import importlib.util

    from seg_jax.ablations.sweep import main
    committed = REPO / "results" / "ablations" / "loss"
    assert (committed / "results.json").exists()
    argv = ["--sweep", str(REPO / "configs/ablations/loss.py"), "--tiny"]
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(committed)])
    assert e.value.code == 2 and "holds committed results" in capsys.readouterr().err
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "matplotlib" else find_spec(n, *a))
    with pytest.raises(SystemExit) as e:
        main(argv + ["--out", str(tmp_path / "new")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "pip install -e '.[plots]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "new").exists()                           # nothing trained, nothing written
