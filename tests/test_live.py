"""``python -m seg_jax.live`` end to end on tiny generated videos, images and a fake camera."""

import cv2
import numpy as np
import pytest

from seg_jax.artifacts.weights_folder import save_weights
from seg_jax.inference.segmenter import random_variables
from seg_jax.live import LiveOptions, parse_mode, run
from seg_jax.live.app import LiveError
from seg_jax.live.cli import main
from seg_jax.live.sources import SAMPLE_VIDEO, open_source

H, W = 40, 56


def make_frames(n, h=H, w=W, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 60, np.uint8)
        f[h // 4:, w // 3 + i: 2 * w // 3 + i] = (200, 150, 120)  # a "person" that moves
        out.append(np.clip(f.astype(int) + rng.integers(-5, 6, f.shape), 0, 255).astype(np.uint8))
    return out


def write_video(path, frames, fps=10):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        w.write(f[..., ::-1])
    w.release()
    return path


def count_frames(path):
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("w") / "mobilenet"
    save_weights(d, {"name": "mobilenet"}, random_variables("mobilenet"), {"input_size": [32, 32]})
    return str(d)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("v") / "clip.mp4", make_frames(5))


class FakeCapture:
    """A cv2.VideoCapture stand-in: yields ``frames`` (RGB), then fails (disconnect) or raises at ``interrupt_at``."""

    def __init__(self, frames, opened=True, interrupt_at=None):
        self.frames, self.opened, self.interrupt_at, self.i = list(frames), opened, interrupt_at, 0

    def isOpened(self):
        return self.opened

    def read(self):
        if self.interrupt_at is not None and self.i == self.interrupt_at:
            raise KeyboardInterrupt
        if self.i < len(self.frames):
            self.i += 1
            return True, self.frames[self.i - 1][..., ::-1].copy()
        return False, None

    def get(self, prop):
        return 15.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def set(self, *a):
        return True

    def release(self):
        self.opened = False


def test_sample_video_is_shipped():
    assert SAMPLE_VIDEO.is_file() and SAMPLE_VIDEO.stat().st_size < 1_000_000
    src = open_source("sample")
    assert src.frame_count >= 100 and src.read().shape == (360, 640, 3)
    src.close()
    assert "Pixabay" in (SAMPLE_VIDEO.parent / "ATTRIBUTION.md").read_text()


def test_cli_video_to_video(tmp_path, weights, clip, capsys):
    out = tmp_path / "out.mp4"
    assert main(["--source", str(clip), "--mode", "blur", "--output", str(out), "--checkpoint", weights,
                 "--feather", "1", "--expand", "1", "--smooth", "0.3", "--stabilise", "0.5", "--flicker"]) == 0
    assert count_frames(out) == 5
    err = capsys.readouterr().err
    assert "5 frames" in err and "flicker" in err


@pytest.mark.parametrize("mode", ["image", "video", "color:10,200,30"])
def test_cli_backgrounds(tmp_path, weights, clip, mode):
    if mode == "image":
        bg = tmp_path / "bg.png"
        cv2.imwrite(str(bg), np.full((90, 120, 3), 200, np.uint8))
        mode = f"image:{bg}"
    elif mode == "video":
        mode = f"video:{write_video(tmp_path / 'bg.mp4', make_frames(2, 30, 30))}"  # shorter: loops
    out = tmp_path / "out.avi"
    assert main(["--source", str(clip), "--mode", mode, "--output", str(out), "--checkpoint", weights,
                 "--threshold", "0.5", "--refine", "guided-gray", "-q"]) == 0
    assert count_frames(out) == 5


def test_cli_image_folder_in_and_out(tmp_path, weights):
    src = tmp_path / "imgs"
    src.mkdir()
    for i, f in enumerate(make_frames(2)):
        cv2.imwrite(str(src / f"photo{i}.jpg"), f[..., ::-1])
    (src / "notes.txt").write_text("not an image")
    assert main(["--source", str(src), "--mode", "mask", "--output", str(tmp_path / "masks"), "--checkpoint",
                 weights, "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["photo0.png", "photo1.png"]
    assert cv2.imread(str(tmp_path / "masks" / "photo0.png"), cv2.IMREAD_UNCHANGED).shape == (H, W)  # one channel
    single = tmp_path / "one.png"
    assert main(["--source", str(src / "photo0.jpg"), "--mode", "green", "-o", str(single), "--checkpoint",
                 weights, "-q"]) == 0
    assert cv2.imread(str(single)).shape == (H, W, 3)


def test_cli_bad_inputs(tmp_path, weights, clip, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00not a video" * 100)
    cases = [
        (["--source", str(clip), "--mode", f"image:{tmp_path / 'missing.jpg'}", "-o", str(tmp_path / "a.mp4")],
         "background image not found"),
        (["--source", str(broken), "-o", str(tmp_path / "b.mp4")], "cannot read video"),
        (["--source", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "c.mp4")], "source not found"),
        (["--source", str(clip), "--no-window"], "nowhere to show"),
        (["--source", str(clip), "--mode", "sepia", "-o", str(tmp_path / "d.mp4")], "unknown mode"),
        (["--source", str(clip), "--input-size", "100x100", "-o", str(tmp_path / "f.mp4")], "multiples of 32"),
        (["--source", str(clip), "--guided-subsample", "0", "-o", str(tmp_path / "g.mp4")],
         "subsample must be a positive integer"),
        (["--source", str(clip), "--stabilise", "1.5", "-o", str(tmp_path / "h.mp4")], "stabilise strength"),
        (["--source", str(clip), "-o", str(tmp_path / "e.mp4"), "--checkpoint", str(tmp_path / "none")],
         "does not exist"),
    ]
    for argv, message in cases:
        assert main(argv + ["--checkpoint", weights] if "--checkpoint" not in argv else argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_virtual_camera_message(weights, clip, capsys):
    try:
        import pyvirtualcam  # noqa: F401
        pytest.skip("pyvirtualcam is installed")
    except ImportError:
        pass
    assert main(["--source", str(clip), "--virtual-cam", "--checkpoint", weights]) == 2
    assert "pip install" in capsys.readouterr().err


def test_camera_missing_disconnect_and_resolution_change(tmp_path, weights):
    with pytest.raises(LiveError, match="could not open camera 0"):
        run(LiveOptions(source="0", output=str(tmp_path / "x.mp4"), checkpoint=weights),
            capture_factory=lambda *_: FakeCapture([], opened=False))
    frames = make_frames(3) + make_frames(2, 30, 50)  # the camera switches resolution, then is unplugged
    out = tmp_path / "cam.mp4"
    stats = run(LiveOptions(source="0", output=str(out), checkpoint=weights, quiet=True, mirror=True),
                capture_factory=lambda *_: FakeCapture(frames))
    assert stats.end_reason == "camera disconnected" and stats.frames == 5
    assert count_frames(out) == 5  # finalised and playable
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_HEIGHT), cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == (H, W)


def test_ctrl_c_finalises_output(tmp_path, weights):
    out = tmp_path / "int.mp4"
    stats = run(LiveOptions(source="0", output=str(out), checkpoint=weights, quiet=True),
                capture_factory=lambda *_: FakeCapture(make_frames(5), interrupt_at=3))
    assert stats.end_reason.startswith("interrupted") and count_frames(out) == 3


def test_parse_mode():
    assert parse_mode("blur:7").blur_sigma == 7 and parse_mode("color:1,2,3").color == (1, 2, 3)
    assert parse_mode("image:a.png").path == "a.png" and parse_mode("green").kind == "green"
    for bad in ("color:1,2", "image", "blur:x", "sepia"):
        with pytest.raises(LiveError):
            parse_mode(bad)


def test_a_truncated_video_says_so(tmp_path, weights, capsys):
    full = tmp_path / "full.avi"
    w = cv2.VideoWriter(str(full), cv2.VideoWriter_fourcc(*"MJPG"), 10, (W, H))
    for f in make_frames(40):
        w.write(f[..., ::-1])
    w.release()
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])            # the header still announces 40 frames
    assert main(["--source", str(cut), "-o", str(tmp_path / "o.avi"), "--checkpoint", weights]) == 1
    err = capsys.readouterr().err
    assert f"of the 40 frames {cut} announces could not be decoded (skipped or cut off)" in err, err
    assert "; damaged input: " in err


def test_compiled_steps_are_kept_in_a_user_cache_folder(tmp_path):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["SEG_JAX_CACHE"] = str(tmp_path / "cache")
    code = ("from seg_jax.live.cli import use_compile_cache; print(use_compile_cache()); import jax, jax.numpy as jnp;"
            "jax.jit(lambda x: jnp.sin(x) * 2)(jnp.ones(3)).block_until_ready()")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    folder = tmp_path / "cache" / "jax"
    assert out.stdout.strip() == str(folder) and any(folder.iterdir())


def test_h264_by_default_and_the_sound_track_is_kept(tmp_path, weights, capsys):
    import subprocess

    from seg_jax.live import audio
    exe = audio.ffmpeg_exe()
    talk = tmp_path / "talk.mp4"
    subprocess.run([exe, "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size={W}x{H}:rate=10", "-f", "lavfi",
                    "-i", "sine=frequency=440", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
                    str(talk)], check=True)
    out = tmp_path / "out.mp4"
    assert main(["--source", str(talk), "--output", str(out), "--checkpoint", weights]) == 0
    assert "(H.264, audio kept)" in capsys.readouterr().err
    assert audio.has_audio(out) and count_frames(out) == 10
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") in (b"avc1", b"h264", b"H264")
    cap.release()
    silent = tmp_path / "silent.mp4"
    assert main(["--source", str(talk), "--output", str(silent), "--checkpoint", weights, "--fps", "5"]) == 0
    assert not audio.has_audio(silent)         # another frame rate: the sound would drift, so it is not kept


def test_a_folder_of_photos_carries_no_state_and_compiles_per_bucket(tmp_path, weights):
    from seg_jax.inference.segmenter import Segmenter
    src = tmp_path / "photos"
    src.mkdir()
    rng = np.random.default_rng(4)
    for name, hw in [("a", (40, 56)), ("b", (45, 60)), ("c", (50, 62))]:
        cv2.imwrite(str(src / f"{name}.png"), rng.integers(0, 256, hw + (3,), dtype=np.uint8))
    seg = Segmenter("mobilenet", checkpoint=weights)
    seen = []
    step = seg.step_device
    seg.step_device = lambda frame: seen.append(frame.shape[:2]) or step(frame)
    run(LiveOptions(source=str(src), mode="mask", output=str(tmp_path / "all"), smooth=0.5, quiet=True),
        segmenter=seg)
    assert set(seen) == {(64, 64)}                     # one bucket for three sizes
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "c.png").write_bytes((src / "c.png").read_bytes())
    (alone / "0.png").write_bytes((src / "a.png").read_bytes())    # first, then c: nothing of it may reach c
    seg.reset()
    run(LiveOptions(source=str(alone), mode="mask", output=str(tmp_path / "one"), quiet=True), segmenter=seg)
    together = cv2.imread(str(tmp_path / "all" / "c.png"), cv2.IMREAD_UNCHANGED)
    assert together.shape == (50, 62)
    np.testing.assert_array_equal(together, cv2.imread(str(tmp_path / "one" / "c.png"), cv2.IMREAD_UNCHANGED))
