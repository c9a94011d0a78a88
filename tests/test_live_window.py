"""The live tool's real window under a virtual X server (Xvfb): what is on screen is the processed frame, a key
changes the picture, the quit key ends the run with exit code 0. Skipped where Xvfb, xdotool or xwd is missing
(``.ci/run`` installs them)."""
import os
import shutil
import struct
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from seg_jax.live.display import display_problem, opencv_has_gui, x_screen_size
from seg_jax.live.sources import SAMPLE_VIDEO
from seg_jax.live.window import draw_block, key_hint_line, opening_size, text_scale

TOOLS = ("Xvfb", "xdotool", "xwd")
needs_x = pytest.mark.skipif(not all(shutil.which(t) for t in TOOLS) or not opencv_has_gui(),
                             reason="needs Xvfb, xdotool, xwd and the GUI build of OpenCV")


def read_xwd(data: bytes) -> np.ndarray:
    """An ``xwd -root`` dump (ZPixmap, 24 or 32 bits a pixel, TrueColor) -> (H, W, 3) uint8 RGB."""
    fields = struct.unpack(">25I", data[:100])
    header_size, _, pixmap_format, _, w, h = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line, ncolors = fields[7], fields[11], fields[12], fields[19]
    assert pixmap_format == 2 and bits_per_pixel in (24, 32)
    n = bits_per_pixel // 8
    px = np.frombuffer(data, np.uint8, h * bytes_per_line, header_size + 12 * ncolors)
    px = px.reshape(h, bytes_per_line)[:, :w * n].reshape(h, w, n)
    px = px[..., ::-1][..., n - 3:] if byte_order == 1 else px[..., :3]      # -> B, G, R
    return np.ascontiguousarray(px[..., ::-1])


@pytest.fixture(scope="module")
def xserver():
    """A fresh Xvfb display (1280x1024, 24 bits) for this module -> its name, e.g. ':5'."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x1024x24", "-nolisten", "tcp",
                             "-noreset"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        display = ":" + f.readline().strip()
    try:
        yield display
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _x(display: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), env={**os.environ, "DISPLAY": display}, capture_output=True, check=True)


def _geometry(display: str, window: str) -> tuple[int, int, int, int]:
    """(x, y, w, h) of an X window."""
    out = _x(display, "xdotool", "getwindowgeometry", "--shell", window).stdout.decode()
    g = dict(line.split("=") for line in out.split())
    return int(g["X"]), int(g["Y"]), int(g["WIDTH"]), int(g["HEIGHT"])


def _shot(display: str, geometry) -> np.ndarray:
    x, y, w, h = geometry
    return read_xwd(_x(display, "xwd", "-root", "-silent").stdout)[y:y + h, x:x + w]


def _long_clip(path, frames: int = 300) -> None:
    """The sample's first 50 frames played forwards and back: a clip the test cannot outrun."""
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    first = [cap.read()[1] for _ in range(50)]
    cap.release()
    loop = first + first[::-1]
    h, w = first[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (w, h))
    for i in range(frames):
        out.write(loop[i % len(loop)])
    out.release()


def _best_match(shown: np.ndarray, folder, rows: slice) -> float:
    """Mean |difference| between the rows ``rows`` of the picture on screen and of the closest written frame."""
    best = 1e9
    for p in sorted(folder.iterdir()):
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)[..., ::-1]
        if frame.shape == shown.shape:
            best = min(best, float(np.abs(frame[rows].astype(np.int16) - shown[rows]).mean()))
    return best


@needs_x
def test_window_shows_the_processed_frame_a_key_changes_it_and_q_quits(tmp_path, xserver):
    clip, frames = tmp_path / "clip.avi", tmp_path / "frames"
    _long_clip(clip)
    env = {**os.environ, "DISPLAY": xserver}
    proc = subprocess.Popen([sys.executable, "-m", "seg_jax.live", "--source", str(clip), "--output", f"{frames}/",
                             "--mode", "blur:20"],             # no --window: a display is enough (README command 1)
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, window, geometry = time.monotonic() + 240, None, None
        while time.monotonic() < deadline and proc.poll() is None:   # until frames are shown at the frame's size
            found = subprocess.run(["xdotool", "search", "--name", "seg_jax live"], env=env, capture_output=True)
            window = found.stdout.decode().split()[0] if found.returncode == 0 else None
            if window and _geometry(xserver, window)[2:] == (640, 360):
                geometry = _geometry(xserver, window)
                break
            time.sleep(0.3)
        assert geometry is not None, proc.communicate(timeout=30)
        time.sleep(0.5)
        before = _shot(xserver, geometry)
        _x(xserver, "xdotool", "key", "--window", window, "m")          # mask mode
        time.sleep(2.0)
        after = _shot(xserver, geometry)
        _x(xserver, "xdotool", "key", "--window", window, "q")
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "closed by user" in err
    rows = slice(120, 300)          # between the status block (top) and the key hints (bottom)
    assert _best_match(before, frames, rows) < 1.5                       # the window shows the processed frame
    raw = cv2.VideoCapture(str(clip)).read()[1][..., ::-1]
    assert np.abs(raw[rows].astype(np.int16) - before[rows]).mean() > 3.0  # ... not the camera picture
    assert _best_match(after, frames, rows) < 1.5                        # the mask frames written after the key
    spread = np.abs(after[rows].astype(np.int16) - after[rows].mean(axis=-1, keepdims=True)).mean()
    assert spread < 1.0 and np.abs(after[rows].astype(np.int16) - before[rows]).mean() > 20   # grey mask now


@needs_x
def test_display_problems_are_one_line_naming_the_way_out(xserver, monkeypatch):
    assert x_screen_size(xserver) == (1024, 1280)
    monkeypatch.setenv("DISPLAY", xserver)
    assert display_problem() == ""                   # a throw-away window opened in a child process
    monkeypatch.setenv("DISPLAY", ":999")
    assert "no X server answers at DISPLAY=:999" in display_problem()
    monkeypatch.delenv("DISPLAY")
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert "Wayland without XWayland" in display_problem() and "--output" in display_problem()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    assert "no display here" in display_problem() and "--output" in display_problem()


def test_no_window_possible_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys):
    from seg_jax.live.cli import main
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["--source", "sample"]) == 2                         # no display, no --output
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no display here" in err and "desktop" in err and "--output" in err
    monkeypatch.setenv("DISPLAY", ":999")                            # a GUI backend that cannot start
    out = tmp_path / "out.mp4"
    assert main(["--source", "sample", "--window", "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "DISPLAY=:999" in err
    assert not list(tmp_path.iterdir())                              # nothing written
    from seg_jax.live.app import LiveOptions, want_window
    monkeypatch.delenv("DISPLAY")
    window, note = want_window(LiveOptions(source="sample", output=str(out)))
    assert not window and note.startswith("no window (no display here") and note.endswith(f"writing {out} only")
    monkeypatch.setattr("seg_jax.live.display.opencv_has_gui", lambda: False)
    assert main(["--source", "sample", "--window", "--output", str(out)]) == 2
    assert "pip install --force-reinstall 'opencv-python" in capsys.readouterr().err


def test_window_opens_at_the_frame_size_capped_to_the_screen_and_its_text_scales():
    assert opening_size((360, 640), (1024, 1280)) == (360, 640)
    assert opening_size((2160, 3840), (1080, 1920)) == (972, 1728)      # 90% of the screen, aspect kept
    assert opening_size((360, 640), None) == (360, 640)
    assert text_scale(360) < text_scale(1080)
    small, big = np.zeros((360, 640, 3), np.uint8), np.zeros((1080, 1920, 3), np.uint8)
    draw_block(small, [key_hint_line()], text_scale(360), bottom=True)
    draw_block(big, [key_hint_line()], text_scale(1080), bottom=True)
    rows = lambda im: np.flatnonzero(im.max(axis=(1, 2)) > 128)          # noqa: E731 - rows with text
    assert small[:300].max() == 0 and big[:900].max() == 0               # at the bottom
    assert np.ptp(rows(big)) > 2.5 * np.ptp(rows(small))                 # text as tall as the window is
    assert np.flatnonzero(small.max(axis=(0, 2)) > 128).max() < 640      # a long line fits, never cut


def test_overlay_shows_the_value_a_key_just_changed_and_the_failsafe_state():
    from types import SimpleNamespace

    from seg_jax.live.failsafe import Decision, FailsafeOutput
    from seg_jax.live.loop import Look, failsafe_line, look_line
    from seg_jax.ops.composite import AlphaOptions, CompositeOptions
    look = Look(AlphaOptions(None, 0, 0.0), CompositeOptions("blur", 12.0, (0, 0, 0)), False, 0.5, frozenset())
    assert look_line(look) == "blur 12.0  soft alpha"
    for key in "+tf":
        look.handle_key(ord(key))
    assert look_line(look) == "blur 15.0  threshold 0.50  mirrored"
    look.handle_key(ord("m"))
    assert look_line(look).startswith("mask")
    process = SimpleNamespace(failsafe=object(), failsafe_output=FailsafeOutput("blur"), look=look)
    assert failsafe_line(process, None) == "fail-safe idle (mask mode)"
    look.handle_key(ord("b"))
    assert failsafe_line(process, None) == "fail-safe blur: watching"
    engaged = Decision(engaged=True, reasons=("dark",), changed=True, bad=True)
    assert failsafe_line(process, engaged) == "FAIL-SAFE: output blurred (dark)"
    assert failsafe_line(SimpleNamespace(failsafe=None), None) == "fail-safe off"
    assert key_hint_line().startswith("h all keys")
