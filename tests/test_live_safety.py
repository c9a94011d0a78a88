"""The live tool loses nothing: stop signals finalise the output, an interrupted rerun keeps the previous file,
an output that is the input is refused, bad numbers and unwritable outputs get one line before the model loads."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_live import count_frames, weights  # noqa: F401 - weights is the shared fixture of random weights

from seg_jax.live import LiveOptions, run
from seg_jax.live.cli import main
from seg_jax.live.signals import StopRequest

REPO = Path(__file__).resolve().parents[1]


def _frames(n, h=40, w=56):
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _video(path, n):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (56, 40))
    for f in _frames(n):
        writer.write(f)
    writer.release()
    return path


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    return _video(tmp_path_factory.mktemp("v") / "long.avi", 3000)


def _start_and_signal(argv, out: Path, signum):
    """Start the CLI, wait until it is writing ``out`` (its partial file), send ``signum``; -> (rc, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "seg_jax.live", *argv], cwd=REPO, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        partial = list(out.parent.glob(f".{out.stem}.partial-*{out.suffix}"))
        if partial and partial[0].stat().st_size > 20_000:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_stop_signal_finalises_the_video_and_an_interrupted_rerun_keeps_the_previous_file(
        tmp_path, weights, long_clip, signum):
    out = tmp_path / "out.avi"
    argv = ["--source", str(long_clip), "--output", str(out), "--checkpoint", weights, "-q"]
    rc, err = _start_and_signal(argv, out, signum)
    assert rc == 128 + signum and "Traceback" not in err, err
    first = count_frames(out)
    assert 0 < first < 3000
    before = out.read_bytes()
    rc, err = _start_and_signal(argv, out, signum)        # the same command again, stopped again
    assert rc == 128 + signum
    assert out.read_bytes() == before                       # the first result is intact
    assert count_frames(tmp_path / "out.interrupted.avi") > 0     # and the second one is kept, finalised, beside it
    assert not list(tmp_path.glob(".out.partial-*"))


def test_stop_request_between_frames_and_a_complete_rerun_replaces(tmp_path, weights):
    clip = _video(tmp_path / "clip.avi", 6)
    out = tmp_path / "o.avi"
    assert run(LiveOptions(source=str(clip), output=str(out), checkpoint=weights, quiet=True)).frames == 6
    stop = StopRequest()
    stop.request(signal.SIGTERM)
    stats = run(LiveOptions(source=str(clip), output=str(out), checkpoint=weights, quiet=True), stop=stop)
    assert stats.frames == 0 and stats.end_reason == "stopped (SIGTERM)" and stop.exit_code == 143
    assert stats.outputs == []                          # issue 48 case 27: an untouched output is not named
    assert count_frames(out) == 6 and not (tmp_path / "o.interrupted.avi").exists()   # 0 frames: nothing replaced
    assert run(LiveOptions(source=str(clip), output=str(out), checkpoint=weights, quiet=True,
                           max_frames=2)).frames == 2
    assert count_frames(out) == 2                                                       # a finished run replaces


def test_output_that_is_the_input_is_refused_and_the_input_untouched(tmp_path, weights, capsys):
    clip = _video(tmp_path / "same.avi", 4)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, f in enumerate(_frames(2)):
        cv2.imwrite(str(photos / f"p{i}.jpg"), f)
    before = {p: p.read_bytes() for p in [clip, *photos.iterdir()]}
    cases = [(["--source", str(clip), "--output", str(clip)], "is the --source file"),
             (["--source", str(photos), "--mode", "mask", "--output", str(photos)], "is the --source folder"),
             (["--source", str(photos), "--output", str(photos / "p0.jpg")], "would overwrite images"),
             (["--source", str(photos), "--output", str(photos) + "/./"], "is the --source folder")]
    for argv, message in cases:
        assert main(argv + ["--checkpoint", weights]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert {p: p.read_bytes() for p in before} == before


@pytest.mark.parametrize("argv, message", [
    (["--mode", "blur:nan"], "finite"), (["--mode", "blur:inf"], "finite"), (["--mode", "blur:-5"], "blur strength"),
    (["--feather", "-5"], "--feather must be 0..50"), (["--expand", "-100000"], "--expand must be -50..50"),
    (["--fps", "0"], "--fps"), (["--max-frames", "0"], "--max-frames"), (["--smooth", "nan"], "finite"),
    (["--guided-eps", "-1"], "--guided-eps"),
])
def test_bad_numbers_get_one_line(tmp_path, weights, capsys, argv, message):
    clip = _video(tmp_path / "c.avi", 2)
    assert main(["--source", str(clip), "-o", str(tmp_path / "o.avi"), "--checkpoint", weights, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_unwritable_output_is_found_before_the_model_loads(tmp_path, capsys):
    clip = _video(tmp_path / "c.avi", 2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    t0 = time.perf_counter()
    # a missing checkpoint would fail later: the output is checked first
    assert main(["--source", str(clip), "-o", str(locked / "o.mp4"), "--checkpoint", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "locked" in err and time.perf_counter() - t0 < 5


def test_unwritable_output_under_proc_is_one_line(tmp_path, capsys):
    clip = _video(tmp_path / "c.avi", 2)
    assert main(["--source", str(clip), "-o", "/proc/seg_jax_out.mp4", "--checkpoint", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and len(err.strip().splitlines()) == 1, err


def test_ctrl_c_during_compile_exits_cleanly(tmp_path, weights, long_clip):
    """SIGINT while the step compiles (a fresh compilation cache): no crash, rc 130, nothing written."""
    out = tmp_path / "o.avi"
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([sys.executable, "-m", "seg_jax.live", "--source", str(long_clip), "-o", str(out),
                             "--checkpoint", weights], cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            text=True, env=env)
    seen = ""
    while "compiling" not in seen and proc.poll() is None:
        seen += proc.stderr.readline()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    err = seen + err
    assert proc.returncode == 130, err
    assert "Fatal Python error" not in err and "Traceback" not in err and "interrupted" in err
    assert not out.exists()
