"""Issue 48, "Nothing lost, round 3": the side tools (ONNX runner, export, ship rule, evaluate, model card, label
audit, report) keep the live tool's promise through one shared writer (:mod:`seg_jax.common.writer`): every
problem a user can cause is one line with the exit-code rule, and no earlier file is replaced by a worse one.
Each test names the issue's case number. Everything is made in the test: a tiny ONNX graph (a channel mean, no
weights), short MJPG clips, hand-made evaluation files.
"""
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_live import count_frames
from test_nothing_lost import write_damaged_h264

from seg_jax.common.writer import (
    OutputError,
    atomic_output,
    check_output,
    partial_path,
    write_json,
    write_text,
)

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here to fill a disk")


# ---------------------------------------------------------------- helpers: tiny models, clips, evaluations

def tiny_onnx(path: Path, nchw: bool = False) -> Path:
    """An ONNX graph with the seg_jax names ('image' -> 'mask'): the mean over the channels. ``nchw``: the wrong
    layout (channels first), which onnxruntime only rejects when a frame is fed."""
    import onnx
    from onnx import TensorProto, helper
    dims = ["n", 3, "h", "w"] if nchw else ["n", "h", "w", 3]
    out = ["n", 1, "h", "w"] if nchw else ["n", "h", "w", 1]
    node = helper.make_node("ReduceMean", ["image"], ["mask"], axes=[1 if nchw else 3], keepdims=1)
    graph = helper.make_graph([node], "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)],
                              [helper.make_tensor_value_info("mask", TensorProto.FLOAT, out)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def clip(path: Path, n: int = 12, h: int = 48, w: int = 64) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    rng = np.random.default_rng(0)
    for _ in range(n):
        writer.write(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("media")
    return {"onnx": tiny_onnx(folder / "m.onnx"), "nchw": tiny_onnx(folder / "nchw.onnx", nchw=True),
            "clip": clip(folder / "clip.avi"), "long": clip(folder / "long.avi", 3000)}


def run_onnx_live(capfd, *argv) -> tuple[int, str]:
    """The runner in this process: -> (exit code, everything it printed to stderr, OpenCV's own lines included)."""
    from seg_jax.onnx.live import main
    capfd.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capfd.readouterr().err


def earlier_output(path: Path, media) -> bytes:
    """A good earlier result at ``path`` (the runner's own), -> its bytes."""
    from seg_jax.onnx.live import main
    assert main(["--onnx", str(media["onnx"]), "--source", str(media["clip"]), "--output", str(path)]) == 0
    assert count_frames(path) == 12
    return path.read_bytes()


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- the shared writer

def test_the_writer_renames_only_a_complete_file_and_keeps_the_earlier_one(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": 1})
    before = target.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert target.read_bytes() == before and not partial_path(target).exists()
    with pytest.raises(OutputError, match=r"could not write .*r\.json: the disk is full; free some space .*"
                                          r"\(the earlier r\.json is unchanged\)"):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == before and not partial_path(target).exists()


def test_the_writer_refuses_an_input_a_protected_folder_a_loop_and_a_read_only_file(tmp_path):
    source = tmp_path / "in.json"
    source.write_text("{}")
    with pytest.raises(OutputError, match=r"--out .*in\.json is also an input of this command .*choose another --out"):
        check_output(source, inputs=[source], option="--out")
    with pytest.raises(OutputError, match="is also an input"):       # through a symlink too
        link = tmp_path / "link.json"
        link.symlink_to(source)
        check_output(link, inputs=[source])
    weights = tmp_path / "w"
    weights.mkdir()
    with pytest.raises(OutputError, match=r"is inside .*w, which this command reads"):
        check_output(weights / "variables.msgpack", protected_dirs=[weights])
    loop = tmp_path / "loop.mp4"
    loop.symlink_to(loop)
    with pytest.raises(OutputError, match="symbolic link that loops"):
        check_output(loop)
    source.chmod(0o444)
    with pytest.raises(OutputError, match=r"read-only; make it writable \(chmod u\+w\)"):
        check_output(source)


@needs_dev_full
def test_the_writer_on_a_full_disk_keeps_the_earlier_file_and_says_so(tmp_path):
    target = tmp_path / "r.md"
    write_text(target, "earlier")
    os.symlink("/dev/full", partial_path(target))
    with pytest.raises(OutputError) as e:
        write_text(target, "new" * 1000)
    assert str(e.value) == (f"could not write {target}: the disk is full; free some space or choose another "
                            "--output (the earlier r.md is unchanged)")
    assert target.read_text() == "earlier" and not os.path.lexists(partial_path(target))


# ---------------------------------------------------------------- the ONNX runner (cases 1-4, 13-15, 21, 27)

def test_case01_a_wrong_layout_model_is_one_line_and_the_earlier_output_stays(tmp_path, media, capfd):
    out = tmp_path / "out.mp4"
    before = earlier_output(out, media)
    rc, err = run_onnx_live(capfd, "--onnx", media["nchw"], "--source", media["clip"], "--output", out)
    assert rc == 2 and "not (N, H, W, 3) RGB" in one_line(err)
    assert out.read_bytes() == before and not list(tmp_path.glob(".out.partial-*"))


def test_case01_a_model_that_fails_on_a_frame_is_one_line(tmp_path, media, capfd, monkeypatch):
    from seg_jax.onnx import live
    out = tmp_path / "out.avi"
    before = earlier_output(out, media)

    def broken(self, frame, bgr=False):
        raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions\nmore")
    monkeypatch.setattr(live.OnnxSegmenter, "step", broken)
    rc, err = run_onnx_live(capfd, "--onnx", media["onnx"], "--source", media["clip"], "--output", out)
    assert rc == 2 and "cannot segment a 64x48 frame ([ONNXRuntimeError]" in one_line(err)
    assert out.read_bytes() == before


def test_case02_an_output_that_is_the_source_or_the_model_is_refused(tmp_path, media, capfd):
    source = clip(tmp_path / "x.avi")
    before = source.read_bytes()
    rc, err = run_onnx_live(capfd, "--onnx", media["onnx"], "--source", source, "--output", source)
    assert rc == 2 and "is also an input of this command" in one_line(err)
    assert source.read_bytes() == before
    model = tmp_path / "m.mp4"                                     # an odd name, but the model all the same
    model.write_bytes(media["onnx"].read_bytes())
    rc, err = run_onnx_live(capfd, "--onnx", model, "--source", media["clip"], "--output", model)
    assert rc == 2 and "is also an input" in one_line(err) and model.read_bytes() == media["onnx"].read_bytes()


def _start_and_signal(argv, out: Path, signum, times: int = 1):
    proc = subprocess.Popen([sys.executable, "-m", "seg_jax.onnx_live", *map(str, argv)], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and \
            not list(out.parent.glob(f".{out.stem}.partial-*{out.suffix}")):
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    for _ in range(times):
        proc.send_signal(signum)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, stdout, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_case03_case13_a_stop_signal_finalises_beside_the_earlier_output(tmp_path, media, signum):
    out = tmp_path / "prev.avi"
    before = earlier_output(out, media)
    rc, stdout, stderr = _start_and_signal(["--onnx", media["onnx"], "--source", media["long"], "--output", out],
                                           out, signum)
    assert rc == 128 + signum and "Traceback" not in stderr, stderr
    assert out.read_bytes() == before                              # case 3: the earlier file is not replaced
    kept = tmp_path / "prev.interrupted.avi"
    n = count_frames(kept)                                          # case 13: the stopped run's file is playable
    assert 0 < n < 3000 and f"{n} frames -> {kept}" in stdout, stdout
    assert not list(tmp_path.glob(".prev.partial-*"))


@needs_dev_full
@pytest.mark.parametrize("name", ["prev.avi", "prev.mp4"])
def test_case04_a_full_disk_is_one_line_and_keeps_the_earlier_output(tmp_path, media, capfd, name):
    out = tmp_path / name
    before = earlier_output(out, media)
    os.symlink("/dev/full", partial_path(out))                      # every byte the encoder writes: ENOSPC
    rc, err = run_onnx_live(capfd, "--onnx", media["onnx"], "--source", media["clip"], "--output", out)
    line = one_line(err)
    assert rc == 2 and line.startswith(f"seg_jax.onnx_live: error: could not write {out}: ") and \
        f"the earlier {name} is unchanged" in line, line
    assert out.read_bytes() == before and not os.path.lexists(partial_path(out))


def test_case14_an_output_that_is_not_a_video_is_refused(tmp_path, media, capfd):
    rc, err = run_onnx_live(capfd, "--onnx", media["onnx"], "--source", media["clip"], "--output", tmp_path / "x.png")
    assert rc == 2 and "onnx_live writes videos" in one_line(err) and not (tmp_path / "x.png").exists()


def test_case15_a_damaged_video_goes_on_and_exits_1_counting_what_was_lost(tmp_path, media, capfd):
    from seg_jax.live.audio import ffmpeg_exe
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    damaged = write_damaged_h264(tmp_path, seconds=4)
    out = tmp_path / "o.avi"
    capfd.readouterr()
    from seg_jax.onnx.live import main
    rc = main(["--onnx", str(media["onnx"]), "--source", str(damaged), "--output", str(out)])
    stdout = capfd.readouterr().out
    assert rc == 1 and "damaged input" in stdout, stdout
    assert count_frames(out) > 60                                    # it went on past the damage (120 frames)


def test_case21_an_unreadable_source_is_one_line(tmp_path, media):
    """In a fresh process, as a user runs it (OpenCV's FFmpeg log level is read when it first opens a file)."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    for source, words in ((junk, "cannot read video"), ("99", "could not open camera 99"),
                          (tmp_path, "is a photo or a folder")):
        res = subprocess.run([sys.executable, "-m", "seg_jax.onnx_live", "--onnx", str(media["onnx"]), "--source",
                              str(source), "--output", str(tmp_path / "o.mp4")], cwd=REPO, env=ENV,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and words in one_line(res.stderr)
    res = subprocess.run([sys.executable, "-m", "seg_jax.live", "--source", "99", "--no-window", "--output",
                          str(tmp_path / "o.mp4"), "--checkpoint", "random"], cwd=REPO, env=ENV, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 2 and "could not open camera 99" in one_line(res.stderr)


def test_case21_a_bad_flag_is_one_line_in_every_side_tool(capfd):
    from seg_jax.evaluation import model_card, ship_rule
    from seg_jax.live.cli import main as live_main
    from seg_jax.onnx.live import main as onnx_main
    for main, argv in ((live_main, ["--model", "resnet"]), (onnx_main, ["--onnx", "m.onnx", "--bogus"]),
                       (ship_rule.main, ["a.json"]), (model_card.main, ["--bogus"])):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2 and "(see --help)" in one_line(capfd.readouterr().err)


def test_case27_a_run_stopped_before_its_first_frame_names_no_output(tmp_path, media):
    from seg_jax.live.signals import StopRequest
    from seg_jax.onnx.live import build_parser, run
    out = tmp_path / "k.mp4"
    stop = StopRequest()
    stop.request(signal.SIGINT)
    stats = run(build_parser().parse_args(["--onnx", str(media["onnx"]), "--source", str(media["clip"]),
                                           "--output", str(out)]), stop)
    assert stats["frames"] == 0 and stats["output"] is None and not out.exists()


def test_the_runner_stays_free_of_jax(tmp_path, media):
    code = ("import sys, runpy\nfrom seg_jax.onnx import live\n"
            "assert not any(m.split('.')[0] in ('jax', 'flax') for m in sys.modules), 'jax imported'\n")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=ENV, check=True, timeout=60)


# ---------------------------------------------------------------- export (case 5)

def test_case05_export_refuses_to_write_into_the_weights_folder_it_reads(tmp_path, capsys):
    from seg_jax.artifacts import export as seg_export
    weights = tmp_path / "W"
    weights.mkdir()
    (weights / "variables.msgpack").write_bytes(b"weights")
    (weights / "manifest.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in weights.iterdir()}
    for argv in (["--format", "onnx", "--out", str(weights / "variables.msgpack")],
                 ["--out", str(weights / "model.jaxexport")]):
        rc = seg_export.main(["--model", "mobilenet", "--checkpoint", str(weights)] + argv)
        err = capsys.readouterr().err
        assert rc == 2 and "which this command reads" in one_line(err)
    assert {p.name: p.read_bytes() for p in weights.iterdir()} == before


# ---------------------------------------------------------------- ship rule (cases 6, 10-12, 18, 25)

def _evaluation(path: Path, split: str = "val", dice=0.9, share=0.0, flagged=0.0) -> Path:
    path.write_text(json.dumps({"results": [{"model": "mobilenet", "split": split, "full_res": {
        "people": {"per_image": {"dice": [dice] * 5}},
        "negatives": {"false_person_images": flagged, "per_image": {"false_person_share": [share] * 5}}}}]}))
    return path


@pytest.fixture
def pair(tmp_path):
    return _evaluation(tmp_path / "cand.json"), _evaluation(tmp_path / "shipped.json", share=0.1, flagged=1.0)


def ship(capsys, *argv) -> tuple[int, str]:
    from seg_jax.evaluation.ship_rule import main
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def test_case06_the_ship_rule_never_writes_over_an_evaluation(pair, capsys):
    cand, shipped = pair
    before = {p: p.read_bytes() for p in pair}
    for out in pair:
        rc, err = ship(capsys, cand, shipped, "--out", out)
        assert rc == 2 and f"--out {out} is also an input" in one_line(err)
    assert {p: p.read_bytes() for p in pair} == before


def test_case10_case25_a_file_that_is_not_an_evaluation_is_one_line_naming_it(tmp_path, pair, capsys):
    cand, shipped = pair
    cases = {"list.json": ("[1, 2]", "is not an evaluation (a JSON list)"),
             "trunc.json": (cand.read_text()[:40], "is not valid JSON"),
             "empty.json": ("", "is empty"),
             "object.json": ('{"a": 1}', "no 'results' list")}
    for name, (text, words) in cases.items():
        (tmp_path / name).write_text(text)
        rc, err = ship(capsys, tmp_path / name, shipped)
        assert rc == 2 and words in one_line(err) and name in err, err
    (tmp_path / "bin.json").write_bytes(bytes(range(256)))
    rc, err = ship(capsys, tmp_path / "bin.json", shipped)
    assert rc == 2 and "bin.json is not a text file" in one_line(err)


def test_case11_an_unwritable_out_is_one_line_before_the_table(tmp_path, pair, capsys, monkeypatch):
    cand, shipped = pair
    locked = tmp_path / "r.json"
    locked.write_text("earlier")
    locked.chmod(0o444)
    rc, err = ship(capsys, cand, shipped, "--out", locked)
    assert rc == 2 and "read-only" in one_line(err) and locked.read_text() == "earlier"
    real_replace = os.replace

    def denied(src, dst):                       # root ignores folder permissions: the rename itself is refused
        raise PermissionError(errno.EACCES, "Permission denied")
    monkeypatch.setattr(os, "replace", denied)
    out = tmp_path / "new.json"
    rc, err = ship(capsys, cand, shipped, "--out", out)
    monkeypatch.setattr(os, "replace", real_replace)
    assert rc == 2 and "permission denied; use a writable place or choose another --out" in one_line(err)
    assert not out.exists() and not list(tmp_path.glob(".new.partial-*"))


@needs_dev_full
def test_case12_a_full_disk_keeps_the_earlier_result_and_leaves_no_empty_md(tmp_path, pair, capsys):
    cand, shipped = pair
    out = tmp_path / "r.json"
    os.symlink("/dev/full", partial_path(out))
    rc, err = ship(capsys, cand, shipped, "--out", out)
    assert rc == 2 and "the disk is full" in one_line(err)
    assert not out.exists() and not out.with_suffix(".md").exists()


def test_case18_the_ship_rule_decides_on_the_val_split_only(tmp_path, capsys):
    val = _evaluation(tmp_path / "val.json")
    relabelled = _evaluation(tmp_path / "relabelled.json", split="test", share=0.1, flagged=1.0)
    rc, err = ship(capsys, val, relabelled)
    assert rc == 2 and "relabelled.json was evaluated on the 'test' split" in one_line(err)
    rc, err = ship(capsys, _evaluation(tmp_path / "a.json", "test"), _evaluation(tmp_path / "b.json", "test"))
    assert rc == 2 and "decides on 'val' only" in one_line(err)
    rc, _ = ship(capsys, val, _evaluation(tmp_path / "s.json", share=0.1, flagged=1.0))
    assert rc == 0


# ---------------------------------------------------------------- the live tool (cases 7-9, 26, 27)

def test_case07_empty_png_webp_tiff_files_are_skipped_with_one_line_each(tmp_path, capfd):
    from seg_jax.live.sources import open_source
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.png", "b.webp", "c.tiff", "d.jpg"):
        (photos / name).write_bytes(b"")
    source = open_source(str(photos))
    assert source.read() is None and source.skipped == 4
    err = capfd.readouterr().err
    assert err.count("unreadable") == 4 and "Traceback" not in err and "cv2.error" not in err


def test_case08_an_output_that_is_a_symlink_loop_is_one_line(tmp_path):
    from seg_jax.live import LiveOptions, run
    from seg_jax.live.app import LiveError
    source = clip(tmp_path / "c.avi", 2)
    loop = tmp_path / "o.mp4"
    loop.symlink_to(loop)
    with pytest.raises(LiveError, match="is a symbolic link that loops"):
        run(LiveOptions(source=str(source), output=str(loop), quiet=True, checkpoint="/nonexistent"))


_EXIT_AFTER_STOP = """
import atexit, os, signal, sys, time
from seg_jax.live import cli
from seg_jax.live.app import RunStats
def fake_run(opts, stop):
    stop.request(signal.SIGINT)
    return RunStats(end_reason="interrupted (Ctrl-C)")
cli.run = fake_run
def late_ctrl_c():                      # the third Ctrl-C, while the interpreter exits (JAX's atexit is next)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
rc = cli.main(["--source", "sample", "--output", sys.argv[1], "-q"])
atexit.register(late_ctrl_c)
sys.exit(rc)
"""


def test_case09_a_ctrl_c_after_the_output_is_final_does_not_print_a_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-c", _EXIT_AFTER_STOP, str(tmp_path / "o.mp4")], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 130 and "Traceback" not in res.stderr and "KeyboardInterrupt" not in res.stderr, \
        res.stderr


def test_case26_an_interrupted_rerun_into_a_masks_folder_says_which_files_are_old(tmp_path):
    from seg_jax.live.sinks import ImageFolderSink
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in range(6):
        cv2.imwrite(str(masks / f"p{i}.png"), np.zeros((4, 4), np.uint8))
    sink = ImageFolderSink(masks)
    for i in range(2):
        sink.write(np.full((4, 4), 255, np.uint8), name=f"p{i}")
    sink.close(interrupted=True)
    assert "interrupted: 2 written by this run, 4 older files from an earlier run still there" in sink.description
    complete = ImageFolderSink(masks)
    complete.write(np.zeros((4, 4), np.uint8), name="p0")
    complete.close()
    assert complete.description == f"{masks}/ (PNG)"


def test_case27_the_summary_of_a_run_that_wrote_nothing_names_no_file():
    from seg_jax.live.app import RunStats
    from seg_jax.live.cli import summary
    line = summary(RunStats(end_reason="interrupted (Ctrl-C)"))
    assert line.startswith("seg_jax.live: 0 frames (nothing written); interrupted (Ctrl-C)") and "->" not in line


# ---------------------------------------------------------------- training, label audit, evaluate, Segmenter

def test_case16_a_signal_stopped_training_exits_128_plus_the_signal():
    from seg_jax.training.loop import exit_code
    assert exit_code({"signal": "SIGTERM"}) == 143 and exit_code({"signal": "SIGINT"}) == 130
    assert exit_code({"signal": ""}) == 0


def test_case17_label_audit_user_errors_exit_2_naming_the_flag(tmp_path, capsys):
    from seg_jax.data import label_audit
    for argv, words in ((["--data_root", str(tmp_path / "none")], "--data_root"),
                        (["--data_root", str(tmp_path), "--sources", "nope"], "unknown --sources"),
                        (["--data_root", str(tmp_path), "--sources", "people"], "has no people/ folder"),
                        (["--modnet_short", "100"], "not a multiple of 32")):
        with pytest.raises(SystemExit) as e:
            label_audit.main(argv)
        line = one_line(capsys.readouterr().err)
        assert e.value.code == 2 and words in line and "data.folder" not in line, line


def test_case17_a_missing_teacher_is_exit_2_with_the_way_out(tmp_path, capsys, monkeypatch):
    from seg_jax.data import label_audit
    (tmp_path / "people").mkdir()

    def no_teacher(*a, **k):
        raise label_audit.TeacherUnavailable("MODNet teacher unavailable: no virtualenv")
    monkeypatch.setattr(label_audit, "run_audit", no_teacher)
    with pytest.raises(SystemExit) as e:
        label_audit.main(["--data_root", str(tmp_path), "--sources", "people", "--no_install",
                          "--out", str(tmp_path / "out")])
    line = one_line(capsys.readouterr().err)
    assert e.value.code == 2 and "run without --no_install" in line


def test_case19_evaluate_on_a_plain_folder_refuses_full_res_and_peers_it_cannot_score(tmp_path):
    for sub in ("images", "masks"):
        (tmp_path / "plain" / sub).mkdir(parents=True)
    res = subprocess.run([sys.executable, "-m", "seg_jax.evaluate", "--data", str(tmp_path / "plain"), "--peers",
                          "rvm", "--full_res", "--out", str(tmp_path / "e.json")], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "need the shared data's held-out split" in one_line(res.stderr), res.stderr


def test_case20_a_bool_frame_is_read_as_0_and_255():
    from seg_jax.inference.segmenter import as_rgb_uint8, split_opacity
    frame = np.random.default_rng(0).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    mask = frame > 128
    rgb, opacity = split_opacity(mask)
    assert opacity is None and np.array_equal(as_rgb_uint8(rgb), mask.astype(np.uint8) * 255)


# ---------------------------------------------------------------- training's and the data tools' messages (22-24, 28)

def test_case22_an_override_of_a_field_that_does_not_exist_names_it(tmp_path):
    res = subprocess.run([sys.executable, "-m", "seg_jax.train", "--config", "configs/mobilenet.py:tiny",
                          "--config.optim.lr=abc", "--workdir", str(tmp_path / "w")], cwd=REPO, env=ENV,
                         capture_output=True, text=True, timeout=300)
    line = one_line(res.stderr)
    assert res.returncode == 2 and "--config.optim.lr: the config has no field 'optim'" in line, line
    assert not (tmp_path / "w").exists()


def test_case23_a_missing_data_root_is_named_first():
    from seg_jax.configs import get_default_config
    from seg_jax.data import real
    config = get_default_config()
    config.data.source, config.data.root = "mixed", "/missing/data"
    for temporal in (False, True):
        with pytest.raises(ValueError, match=r"^data.root /missing/data does not exist; pass --config.data.root="):
            real.train_sources(config, temporal=temporal)


def test_case24_a_second_training_into_one_workdir_is_refused_naming_the_first(tmp_path):
    from seg_jax.training.workdir_lock import WorkdirBusy, workdir_lock
    with workdir_lock(tmp_path / "w"):
        with pytest.raises(WorkdirBusy, match=rf"another training is using .*w \(pid {os.getpid()}\); wait for it"):
            with workdir_lock(tmp_path / "w"):
                pass
        with workdir_lock(tmp_path / "w", process_index=1):   # another host of the same multi-host run
            pass
    with workdir_lock(tmp_path / "w"):                          # released at the end (and by the kernel on exit)
        pass


def test_case28_a_tfds_data_dir_that_is_a_file_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    from seg_jax.data import prepare
    afile = tmp_path / "tfds"
    afile.write_text("")
    monkeypatch.setenv("TFDS_DATA_DIR", str(afile))
    assert prepare.main(["--list"]) == 2
    assert f"the TFDS data dir {afile} is a file, not a folder" in one_line(capsys.readouterr().err)
    assert prepare.main(["davis17"]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)
