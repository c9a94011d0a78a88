"""The CPU-load bench's measuring and reporting pieces (the measurements themselves: results/bench/cpu-load.json)."""
import sys

from seg_jax.bench.cpu_load import JOBS, cpu_seconds, job_argv
from seg_jax.bench.cpu_load_report import render, verdict

SPIN = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"


def test_cpu_seconds_counts_the_children_a_job_waited_for(tmp_path):
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {SPIN!r}], check=True)"
    cpu, wall = cpu_seconds([sys.executable, "-c", parent], {})
    assert cpu >= 0.4 and wall >= 0.4                  # the grandchild's spin (an encoder's work) is counted


def test_jobs_are_the_live_tool_and_the_mediapipe_script(tmp_path):
    argv = job_argv("seg_jax balanced --every 2", tmp_path / "c.mp4", tmp_path / "o.mp4", 30, None)
    assert argv[1:3] == ["-m", "seg_jax.live"] and argv[-2:] == ["--every", "2"] and "30" in argv
    argv = job_argv("mediapipe naive", tmp_path / "c.mp4", tmp_path / "o.mp4", 30, tmp_path / "py")
    assert argv[0] == str(tmp_path / "py") and argv[1].endswith("mediapipe_job.py") and "--naive" in argv
    assert {kind for kind, _, _ in JOBS.values()} == {"seg_jax", "mediapipe"}


def test_report_states_whether_the_target_is_met():
    row = {"size": "640x480", "condition": "idle", "load_avg_before": [1.0], "frames": [180, 30]}
    rows = [{**row, "job": "seg_jax balanced", "cpu_ms_per_frame": 20.0, "rounds_ms": [19.0, 21.0]},
            {**row, "job": "seg_jax balanced --every 2", "cpu_ms_per_frame": 12.0, "rounds_ms": [12.0]},
            {**row, "job": "mediapipe general", "cpu_ms_per_frame": 15.0, "rounds_ms": [15.0]}]
    every = [{"every": 1, "frames": 165, "dice": 0.80, "flicker": 0.010},
             {"every": 2, "frames": 165, "dice": 0.797, "flicker": 0.011}]
    lines = verdict(rows, every)
    assert "20.0 vs MediaPipe 15.0 ms CPU/frame: misses" in lines[0]
    assert "12.0 vs MediaPipe 15.0 ms CPU/frame: meets" in lines[1] and "Dice -0.0030" in lines[1]
    text = render({"load": rows, "every": every, "hardware": {"cpu_model": "Test CPU"}})
    assert "20.0 (19/21, 1.33x)" in text and "Test CPU" in text and "180-frame run minus a 30-frame run" in text
