"""launch/gpu_long.sh and gpu_long_collect.sh refuse bad input in one line before any work (no GPU needed)."""
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(script, *args, **env):
    return subprocess.run(["bash", str(REPO / "launch" / script), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=60)


def test_a_call_without_the_packed_data_says_how_to_make_it(tmp_path):
    proc = _run("gpu_long.sh", DATA=str(tmp_path / "missing"), OUT=str(tmp_path / "out"), RUNS=str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "no packed data at" in lines[0] and "seg_jax.data.downscale" in lines[0]
    assert not (tmp_path / "out").exists()


def test_an_unknown_model_is_refused(tmp_path):
    proc = _run("gpu_long.sh", MODEL="resnet", DATA=str(tmp_path))
    assert proc.returncode == 2 and "MODEL=resnet is not a model" in proc.stdout


def test_collect_without_checkpoint_parts_names_the_folder(tmp_path):
    proc = _run("gpu_long_collect.sh", str(tmp_path), "mobilenet", RESUME=str(tmp_path / "resume"),
                WORKDIR=str(tmp_path / "wd"))
    assert proc.returncode == 2 and f"no mobilenet.ckpt.tar.part* in {tmp_path}" in proc.stdout
    assert not (tmp_path / "wd").exists()
