"""Nothing the user had is lost when an output cannot be written: a full disk (a real ENOSPC from /dev/full, and a
file size limit that makes the encoder fail part-way), a folder removed during the run, an output that is a folder
or a read-only file, and mask files that would land on an input. Each ends in one line and keeps the earlier file.
"""
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_live import count_frames, weights  # noqa: F401 - weights is the shared fixture of random weights

from seg_jax.live import LiveOptions, run
from seg_jax.live.app import LiveError
from seg_jax.live.audio import ffmpeg_exe
from seg_jax.live.sinks import ImageFolderSink, SinkError, VideoFileSink, partial_path

REPO = Path(__file__).resolve().parents[1]
needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here to fill a disk")
needs_ffmpeg = pytest.mark.skipif(ffmpeg_exe() is None, reason="imageio-ffmpeg is not installed")


def _frames(n, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _good_video(path: Path, n: int = 8) -> bytes:
    with VideoFileSink(path, 10) as sink:
        for f in _frames(n):
            sink.write(f)
    assert count_frames(path) == n
    return path.read_bytes()


def _write_all(sink, frames):
    """Write and close as the live tool does; -> the SinkError line, or '' when nothing failed."""
    try:
        for f in frames:
            sink.write(f)
        sink.close()
    except SinkError as e:
        return str(e)
    return ""


@needs_dev_full
@pytest.mark.parametrize("name", [pytest.param("out.mp4", marks=needs_ffmpeg), "out.avi"])
def test_a_full_disk_keeps_the_earlier_video_and_says_so(tmp_path, name):
    out = tmp_path / name
    before = _good_video(out)
    sink = VideoFileSink(out, 10)
    os.symlink("/dev/full", partial_path(out))      # every byte the encoder writes fails with ENOSPC
    line = _write_all(sink, _frames(6))
    assert line.startswith(f"could not write {out}: ") and f"the earlier {name} is unchanged" in line, line
    assert "\n" not in line
    if name.endswith(".mp4"):                        # ffmpeg says why; OpenCV's writer only leaves a bad file
        assert "the disk is full; free some space or choose another --output" in line, line
    assert out.read_bytes() == before
    assert not partial_path(out).exists() and not partial_path(out).is_symlink()


_FILL_PART_WAY = """
import resource, signal, sys
import numpy as np
from seg_jax.live.sinks import SinkError, VideoFileSink
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # writes past the limit fail with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
sink = VideoFileSink(sys.argv[1], 10)
rng = np.random.default_rng(1)
try:
    for _ in range(30):
        sink.write(rng.integers(0, 256, (96, 128, 3), dtype=np.uint8))
    sink.close()
except SinkError as e:
    print(e)
    sys.exit(2)
"""


@pytest.mark.parametrize("name", [pytest.param("out.mp4", marks=needs_ffmpeg), "out.avi"])
def test_an_encoder_that_fails_part_way_never_replaces_the_earlier_video(tmp_path, name):
    out = tmp_path / name
    before = _good_video(out)
    result = subprocess.run([sys.executable, "-c", _FILL_PART_WAY, str(out)], cwd=REPO, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith(f"could not write {out}: a file is larger than this filesystem (or the "
                                    "process's file size limit) allows") and "unchanged" in result.stdout, result.stdout
    assert out.read_bytes() == before and count_frames(out) == 8
    assert not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("name", [pytest.param("out.mp4", marks=needs_ffmpeg), "out.avi"])
def test_a_folder_removed_during_the_run_is_named(tmp_path, name):
    folder = tmp_path / "results"
    sink = VideoFileSink(folder / name, 10)
    for f in _frames(4):
        sink.write(f)
    for p in folder.iterdir():                       # the user deletes the output folder mid-run
        p.unlink()
    folder.rmdir()
    line = _write_all(sink, _frames(3))
    assert line == (f"could not write {folder / name}: the folder {folder} was removed during the run; "
                    "recreate it (or choose another --output) and run again"), line


@needs_dev_full
def test_a_full_disk_under_a_png_folder_says_the_disk_is_full(tmp_path):
    sink = ImageFolderSink(tmp_path / "masks")
    target = tmp_path / "masks" / "frame_000000.png"
    os.symlink("/dev/full", partial_path(target))
    line = _write_all(sink, _frames(1))
    assert line == (f"could not write {target}: the disk is full; free some space or choose another --output"), line
    assert not target.exists()


def test_an_output_that_is_a_folder_or_read_only_is_refused_before_anything_runs(tmp_path):
    clip = tmp_path / "clip.avi"
    _good_video(clip, 3)
    folder = tmp_path / "x.mp4"
    folder.mkdir()
    with pytest.raises(LiveError, match=r"--output .*x\.mp4 is an existing folder; give a file name"):
        run(LiveOptions(source=str(clip), output=str(folder), quiet=True, checkpoint="/nonexistent"))
    locked = tmp_path / "locked.avi"
    before = _good_video(locked, 3)
    locked.chmod(0o444)
    with pytest.raises(LiveError, match=r"locked\.avi is read-only; make it writable \(chmod u\+w\)"):
        run(LiveOptions(source=str(clip), output=str(locked), quiet=True, checkpoint="/nonexistent"))
    assert locked.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.avi", "locked.avi", "x.mp4"]


@needs_dev_full
def test_the_live_tool_stops_with_one_line_when_the_disk_fills(tmp_path, segmenter):
    """Through the whole tool (reader, writer thread, finalising); the CLI prints a LiveError as one line, exit 2."""
    clip = tmp_path / "clip.avi"
    _good_video(clip, 4)
    out = tmp_path / "out.avi"
    before = _good_video(out, 3)
    os.symlink("/dev/full", partial_path(out))
    with pytest.raises(LiveError) as e:
        run(LiveOptions(source=str(clip), output=str(out), quiet=True), segmenter=segmenter)
    assert str(e.value).startswith(f"could not write {out}: ") and "(the earlier out.avi is unchanged)" in str(e.value)
    assert "\n" not in str(e.value)
    assert out.read_bytes() == before and count_frames(out) == 3


def test_a_mask_never_lands_on_the_source_photo(tmp_path):
    photos = tmp_path / "d"
    photos.mkdir()
    cv2.imwrite(str(photos / "a.png"), _frames(1)[0])
    before = (photos / "a.png").read_bytes()
    with pytest.raises(LiveError, match=r"--output .*d is the folder of the --source image: the result would be "
                                        r"written among the originals \(.*a\.png\); choose another --output folder"):
        run(LiveOptions(source=str(photos / "a.png"), mode="mask", output=str(photos), quiet=True,
                        checkpoint="/nonexistent"))
    assert (photos / "a.png").read_bytes() == before


def test_two_photos_with_one_stem_get_two_masks(tmp_path):
    from seg_jax.live.pipeline import Reader
    from seg_jax.live.sources import open_source, output_stems
    photos = tmp_path / "d"
    photos.mkdir()
    a, b = _frames(2)
    cv2.imwrite(str(photos / "a.jpg"), a)
    cv2.imwrite(str(photos / "a.png"), b)
    cv2.imwrite(str(photos / "b.png"), b)
    reader = Reader(open_source(photos), threaded=False)
    sink = ImageFolderSink(tmp_path / "masks")
    while (captured := reader.get()) is not None:
        sink.write(captured.frame[..., 0], name=captured.name)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a_jpg.png", "a_png.png", "b.png"]
    assert output_stems([Path("x/A.png"), Path("y/a.JPG"), Path("a_png.gif")]) == ["A_png", "a_JPG", "a_png_2"]
    sink.write(a[..., 0], name="b")                 # the same name twice in one run: the second is numbered
    assert (tmp_path / "masks" / "b_000003.png").is_file()


def test_export_checks_out_before_compiling_and_exits_2(tmp_path, capsys, monkeypatch):
    from seg_jax.artifacts import export as seg_export
    compiled = []
    monkeypatch.setattr(seg_export, "export_functions", lambda *a, **k: compiled.append(1))
    (tmp_path / "m.jaxexport").mkdir()
    rc = seg_export.main(["--model", "mobilenet", "--random-init", "--out", str(tmp_path / "m.jaxexport")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "m.jaxexport is a folder; give a file path such as" in err and len(err.splitlines()) == 1
    assert compiled == []


@pytest.mark.parametrize("change, expect", [
    ({"model": "mobilenet"}, "'model' must be an object like {\"name\": \"mobilenet\"}, got 'mobilenet'"),
    ({"model": {"name": "mobilenet", "dtype": 12}}, "'model.dtype' must be a string, got 12"),
    ({"model": {"name": "mobilenet", "dtype": "float64"}}, "'model.dtype' must be one of 'float32', 'bfloat16'"),
    ({"keep_aspect": "false"}, "'keep_aspect' must be true or false, got 'false'"),
    ({"input_size": [256, "x"]}, "'input_size' must be a size (an integer or [height, width]), got [256, 'x']"),
    ({"settle_steps": -1}, "'settle_steps' must be a whole number at least 0, got -1"),
    (None, "must be a JSON object, got a JSON list"),
])
def test_a_manifest_of_wrong_types_is_one_line_in_live_and_export(tmp_path, weights, capsys, change, expect):
    import json
    import shutil

    from seg_jax.artifacts import export as seg_export
    from seg_jax.live.cli import main as live_main
    folder = tmp_path / "w"
    shutil.copytree(weights, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps([manifest] if change is None else {**manifest, **change}))
    clip = tmp_path / "clip.avi"
    _good_video(clip, 2)
    rc = live_main(["--source", str(clip), "--output", str(tmp_path / "o.avi"), "--checkpoint", str(folder), "-q"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith(f"seg_jax.live: {folder / 'manifest.json'}: ") and expect in err, err
    assert len(err.splitlines()) == 1 and not (tmp_path / "o.avi").exists()
    rc = seg_export.main(["--model", "mobilenet", "--checkpoint", str(folder), "--out", str(tmp_path / "m.jax")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and expect in err and len(err.splitlines()) == 1, err


@pytest.fixture(scope="module")
def segmenter(weights):
    from seg_jax.inference.segmenter import Segmenter
    return Segmenter("mobilenet", checkpoint=weights)


def test_a_panorama_over_the_size_limit_is_one_line_and_the_folder_goes_on(tmp_path, segmenter, capsys):
    from seg_jax.inference.segmenter import MAX_FRAME_SIDE
    from seg_jax.live.cli import summary
    photos = tmp_path / "d"
    photos.mkdir()
    small = _frames(1, 40, 56)[0]
    cv2.imwrite(str(photos / "a.png"), small)
    cv2.imwrite(str(photos / "b_pano.png"), np.zeros((30, MAX_FRAME_SIDE + 10, 3), np.uint8))
    cv2.imwrite(str(photos / "c.png"), small)
    stats = run(LiveOptions(source=str(photos), mode="mask", output=str(tmp_path / "masks"), quiet=True),
                segmenter=segmenter)
    err = capsys.readouterr().err.strip()
    assert err == (f"skipping {photos / 'b_pano.png'}: {MAX_FRAME_SIDE + 10}x30 (WxH) is over the {MAX_FRAME_SIDE} "
                   "px per side limit; downscale it first"), err
    assert stats.frames == 2 and stats.end_reason == "skipped 1 of 3 images (named above)"
    assert "skipped 1 of 3 images" in summary(stats)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png", "c.png"]
    with pytest.raises(LiveError, match=r"b_pano\.png: 8202x30 \(WxH\) is over the 8192 px per side limit"):
        run(LiveOptions(source=str(photos / "b_pano.png"), mode="mask", output=str(tmp_path / "m"), quiet=True),
            segmenter=segmenter)


def test_compiled_code_stays_bounded_over_many_frame_sizes(weights, capsys):
    """A bound on what is kept, not a timing: after many sizes the process holds no more compiled executables
    than after the first ``limit`` sizes (unbounded, every size adds its own), and each compile is announced."""
    import jax
    import jax.extend

    from seg_jax.inference.segmenter import Segmenter
    from seg_jax.live.loop import FrameProcessor, Look
    from seg_jax.ops.composite import AlphaOptions, CompositeOptions
    limit = 2
    seg = Segmenter("mobilenet", checkpoint=weights, input_size=(32, 32), refine="bilinear",
                    max_compiled_sizes=limit)
    process = FrameProcessor(seg, Look(AlphaOptions(None, 0, 0.0), CompositeOptions("mask", 1.0, (0, 0, 0)), False,
                                       0.5, frozenset()), jax.numpy.float32(0.0), None, None, stills=True,
                             people="all", failsafe="off")
    backend = jax.extend.backend.get_backend()
    said, held = [], []
    for i in range(3 * limit):                     # 6 photos of 6 sizes (64-px buckets 64x64 .. 384x64)
        frame = np.zeros((40, 40 + 64 * i, 3), np.uint8)
        assert process.announce_compile(frame, said.append)
        process(frame)
        assert not process.announce_compile(frame, said.append)    # the same size again: nothing to compile
        held.append(len(backend.live_executables()))
    assert said == [f"{64 * (i + 1)}x64: compiling for a new frame size..." for i in range(3 * limit)]
    assert seg.compiled_sizes.flushes == 2 and len(seg.compiled_sizes.sizes) == limit
    assert held[0] < held[limit - 1], held          # each new size holds more compiled code...
    assert max(held[limit:]) <= held[limit - 1], held   # ...up to the bound, never beyond


_SAVE_ON_FULL_DISK = """
import resource, sys
import numpy as np, jax.numpy as jnp
import orbax.checkpoint as ocp
from seg_jax.training.checkpointing import CheckpointSaveError, TrainingCheckpoints
checkpoints = TrainingCheckpoints(sys.argv[1])
tree = {"step": jnp.int32(1), "params": {f"w{i}": jnp.asarray(np.random.rand(64, 1024), jnp.float32)
                                         for i in range(40)}}
args = ocp.args.Composite(state=ocp.args.StandardSave(tree), loop=ocp.args.JsonSave({}),
                          data=ocp.args.JsonSave({"state": None}))
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))   # the arrays do not fit: every writer fails
try:
    TrainingCheckpoints._save_or_raise(checkpoints.latest, 1, args)
except CheckpointSaveError as e:
    print(f"seg_jax.train: error: {e}", file=sys.stderr)
    sys.exit(2)
"""


def test_a_checkpoint_save_on_a_full_disk_is_one_line_not_a_flood_of_tracebacks(tmp_path):
    result = subprocess.run([sys.executable, "-c", _SAVE_ON_FULL_DISK, str(tmp_path / "w")], cwd=REPO,
                            capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"seg_jax.train: error: could not save the checkpoint of step 1 in {tmp_path}")
    assert "a file is larger than this filesystem (or the process's file size limit) allows" in lines[0], lines[0]
    assert not list((tmp_path / "w" / "checkpoints" / "latest").glob("1*"))     # no half-written step left


@pytest.fixture(scope="module")
def damaged_clip(tmp_path_factory):
    """180 frames of H.264 with random bytes written over three places in the middle (OpenCV's plain read loop
    stops at the first; ffmpeg decodes most of the rest)."""
    if ffmpeg_exe() is None:
        pytest.skip("imageio-ffmpeg is not installed")
    return write_damaged_h264(tmp_path_factory.mktemp("damaged"), seconds=6)


def write_damaged_h264(folder: Path, seconds: int) -> Path:
    """``folder/damaged.mp4``: ``seconds`` of 30 fps H.264 test pattern with random bytes over three places in the
    middle (needs imageio-ffmpeg)."""
    clip = folder / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30", "-t",
                    str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "30", str(clip)], check=True,
                   timeout=60)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(0)
    for frac in (0.40, 0.42, 0.44):
        at = int(len(data) * frac)
        data[at:at + 400] = rng.integers(0, 256, 400, dtype=np.uint8).tobytes()
    damaged = folder / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    return damaged


def test_a_damaged_video_goes_on_past_its_bad_frames_and_says_how_many_were_lost(tmp_path, damaged_clip, segmenter):
    from seg_jax.live.sources import open_source
    plain = cv2.VideoCapture(str(damaged_clip))
    stops_at = 0
    while plain.read()[0]:
        stops_at += 1
    assert stops_at < 120                                   # the old loop's end: long before the file's end
    source = open_source(damaged_clip)
    decoded = sum(1 for _ in source)
    assert 150 < decoded < 180, decoded
    assert source.end_reason == (f"damaged input: {180 - decoded} of the 180 frames {damaged_clip} announces could "
                                 "not be decoded (skipped or cut off)")
    out = tmp_path / "out.avi"
    stats = run(LiveOptions(source=str(damaged_clip), output=str(out), quiet=True, max_frames=stops_at + 20,
                            mode="mask"), segmenter=segmenter)          # --max-frames past the damage
    assert stats.frames == stops_at + 20 == count_frames(out)
    assert stats.end_reason.startswith("damaged input: ") and "undecodable frames of" in stats.end_reason


@needs_ffmpeg
def test_a_variable_frame_rate_video_keeps_its_timing(tmp_path, segmenter, capsys):
    """1 s at 30 fps then 1 s at 5 fps (35 frames, 2 s): written at the nominal 30 fps as 2 s (60 frames),
    not as 35 frames at the average rate (the fast part slowed down)."""
    clip = tmp_path / "vfr.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=30", "-t", "2",
                    "-vf", "select='if(lt(t,1),1,not(mod(n,6)))'", "-fps_mode", "vfr", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(clip)], check=True, timeout=60)
    out = tmp_path / "out.mp4"
    stats = run(LiveOptions(source=str(clip), output=str(out), mode="mask"), segmenter=segmenter)
    err = capsys.readouterr().err
    assert stats.frames == 35
    assert "variable frame rate (" in err and "fps on average): written at its nominal 30 fps" in err, err
    cap = cv2.VideoCapture(str(out))
    assert cap.get(cv2.CAP_PROP_FPS) == 30 and 55 <= count_frames(out) <= 60     # 2 s at 30 fps


def test_transparent_pixels_are_not_person_in_the_segmenter_and_the_live_tool(tmp_path, segmenter):
    from seg_jax.inference.segmenter import split_opacity
    rgba = np.dstack([_frames(1, 64, 64)[0], np.full((64, 64), 255, np.uint8)])
    rgba[:, :32, 3] = 0                                        # the left half is transparent
    alpha = segmenter.segment(rgba)
    flat, opacity = split_opacity(rgba)
    assert opacity is not None and np.all(flat[:, :32] == 128)      # hidden colours do not reach the network
    assert np.all(alpha[:, :32] == 0)
    np.testing.assert_allclose(alpha[:, 32:], segmenter.segment(flat)[:, 32:], atol=1e-6)
    assert alpha[:, 32:].max() > 0
    photos = tmp_path / "d"
    photos.mkdir()
    cv2.imwrite(str(photos / "cut.png"), np.ascontiguousarray(rgba[..., [2, 1, 0, 3]]))
    run(LiveOptions(source=str(photos), mode="mask", output=str(tmp_path / "masks"), quiet=True), segmenter=segmenter)
    mask = cv2.imread(str(tmp_path / "masks" / "cut.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (64, 64) and np.all(mask[:, :32] == 0)


def test_a_segmenter_fed_a_frame_of_another_size_starts_that_stream_afresh(segmenter):
    a, b = _frames(1, 64, 64, seed=1)[0], _frames(1, 96, 96, seed=2)[0]
    assert segmenter.input_size_for(a.shape[:2]) == segmenter.input_size_for(b.shape[:2])   # one network size
    segmenter.reset()
    segmenter.step(a)
    after_other_stream = segmenter.step(b)
    segmenter.reset()
    np.testing.assert_array_equal(after_other_stream, segmenter.step(b))
    segmenter.reset()


def test_metrics_on_a_full_disk_name_the_cause_in_one_line(tmp_path):
    script = """
import resource, sys
from seg_jax.training.metric_writer import MetricWriter
writer = MetricWriter(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
try:
    for step in range(400):
        writer.write(step, "train", {"loss": 0.5})
except OSError as e:
    print(e)
"""
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.stdout.startswith(f"cannot write the metrics of step ") and (
        f"in {tmp_path}: a file is larger than this filesystem" in result.stdout), result.stdout
    assert result.stdout.strip().endswith("rerun the same command to resume from the last checkpoint")
