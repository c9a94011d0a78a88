"""The motion-gated hold of the previous alpha (seg_jax.ops.stabilise) and its place in the stream."""
import numpy as np
import pytest

from seg_jax.inference.segmenter import DEFAULT_STABILISE, Segmenter, random_variables
from seg_jax.ops.stabilise import Stabilise, estimate_shift, initial_hold_state, stabilise


def _run(settings, frames, probs):
    state = initial_hold_state(frames[0].shape[:2])
    out = []
    for frame, prob in zip(frames, probs):
        state, alpha = stabilise(prob, frame, state, settings)
        out.append(np.asarray(alpha))
    return out


def test_settings_are_validated():
    for bad in [dict(strength=1.0), dict(strength=-0.1), dict(motion=0.0), dict(radius=-1), dict(max_shift=0.0),
                dict(max_shift=0.6)]:
        with pytest.raises(ValueError, match="stabilise"):
            Stabilise(**bad)
    assert not Stabilise().enabled and DEFAULT_STABILISE.enabled


def test_first_frame_passes_through_and_still_frames_are_steadied():
    rng = np.random.default_rng(0)
    frame = np.full((16, 16, 3), 0.5, np.float32)
    probs = [np.clip(0.5 + 0.2 * rng.standard_normal((16, 16)), 0, 1).astype(np.float32) for _ in range(30)]
    out = _run(Stabilise(strength=0.9, motion=0.1, radius=1), [frame] * 30, probs)
    np.testing.assert_allclose(out[0], probs[0], atol=1e-6)
    raw_flicker = np.mean([np.abs(b - a).mean() for a, b in zip(probs[10:], probs[11:])])
    held_flicker = np.mean([np.abs(b - a).mean() for a, b in zip(out[10:], out[11:])])
    assert held_flicker < 0.3 * raw_flicker


def test_moving_image_passes_the_new_alpha_through():
    rng = np.random.default_rng(1)
    frames = [np.full((16, 16, 3), i % 2, np.float32) for i in range(5)]  # every pixel flips black/white
    probs = [rng.random((16, 16)).astype(np.float32) for _ in range(5)]
    out = _run(Stabilise(strength=0.9, motion=0.05, radius=0), frames, probs)
    for alpha, prob in zip(out, probs):
        np.testing.assert_allclose(alpha, prob, atol=1e-6)


def _texture(h, w, seed=3):
    import cv2
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 1.5)


@pytest.mark.parametrize("shift", [(0, 0), (3, -5), (-2, 4), (0, 7)])
def test_the_camera_shift_is_found_by_phase_correlation(shift):
    texture = _texture(48, 64)
    previous, current = texture.mean(-1), np.roll(texture, shift, axis=(0, 1)).mean(-1)
    assert tuple(int(v) for v in estimate_shift(previous, current, 0.25)) == shift


def test_tracking_steadies_a_panning_background_and_fresh_pixels_take_the_new_alpha():
    rng = np.random.default_rng(4)
    texture, clean = _texture(32, 96), np.linspace(0, 1, 96, dtype=np.float32)[None, :].repeat(32, 0)
    frames = [np.ascontiguousarray(texture[:, 2 * t:2 * t + 48]) for t in range(20)]    # camera pans 2 px/frame
    truths = [clean[:, 2 * t:2 * t + 48] for t in range(20)]
    probs = [np.clip(t + 0.15 * rng.standard_normal(t.shape), 0, 1).astype(np.float32) for t in truths]
    error = lambda out: np.mean([np.abs(a - t)[:, :-2].mean() for a, t in zip(out[5:], truths[5:])])
    plain = _run(Stabilise(strength=0.9, motion=0.05, radius=1), frames, probs)
    tracked = _run(Stabilise(strength=0.9, motion=0.05, radius=1, track=True), frames, probs)
    assert error(tracked) < 0.6 * error(plain)
    assert error(tracked) < 0.5 * error(probs)     # without tracking the pan reads as motion nearly everywhere
    for alpha, prob in zip(tracked[1:], probs[1:]):  # the two columns that slid in have no history
        np.testing.assert_allclose(alpha[:, -2:], prob[:, -2:], atol=1e-6)


def test_segmenter_stream_holds_still_frames_and_reset_forgets(tmp_path):
    from seg_jax.artifacts.weights_folder import save_weights
    d = tmp_path / "mobilenet"
    save_weights(d, {"name": "mobilenet"}, random_variables("mobilenet"), {"input_size": [32, 32]})
    rng = np.random.default_rng(2)
    base = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    noisy = [np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8) for _ in range(6)]
    held = Segmenter("mobilenet", checkpoint=d)
    raw = Segmenter("mobilenet", checkpoint=d, stabilise=Stabilise())
    assert held.stabilise == DEFAULT_STABILISE
    a_held = [held.step(f) for f in noisy]
    a_raw = [raw.step(f) for f in noisy]
    np.testing.assert_allclose(a_held[0], a_raw[0], atol=1e-5)  # first frame unchanged
    assert all(a.shape == (40, 48) and 0 <= a.min() and a.max() <= 1 for a in a_held)
    flicker = lambda seq: np.mean([np.abs(b - a).mean() for a, b in zip(seq, seq[1:])])
    assert flicker(a_held) < flicker(a_raw)
    held.reset()
    raw.reset()
    np.testing.assert_allclose(held.step(noisy[3]), raw.step(noisy[3]), atol=1e-5)  # a fresh stream again
    with pytest.raises(TypeError, match="Stabilise"):
        Segmenter("mobilenet", checkpoint=d, stabilise=0.9)


def test_tune_stabilise_cli(tmp_path):
    """A still, noisy clip: the sweep's held setting flickers less than 'off' and the table is written."""
    import json

    import cv2

    from research import tune_stabilise
    from seg_jax.artifacts.weights_folder import save_weights
    weights = tmp_path / "mobilenet"
    save_weights(weights, {"name": "mobilenet"}, random_variables("mobilenet"), {"input_size": [32, 32]})
    rng = np.random.default_rng(3)
    base = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    mask = np.zeros((24, 40), np.uint8)
    mask[4:20, 10:30] = 255
    seq = tmp_path / "data" / "davis" / "hike"
    (seq / "frames").mkdir(parents=True)
    (seq / "masks").mkdir()
    for t in range(5):
        frame = np.clip(base + rng.integers(-4, 5, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(seq / "frames" / f"{t:05d}.png"), frame)
        cv2.imwrite(str(seq / "masks" / f"{t:05d}.png"), mask)
    out = tmp_path / "stabilise.json"
    assert tune_stabilise.main(["--checkpoint", str(weights), "--data_root", str(tmp_path / "data"),
                                "--splits", "train", "--strengths", "0,0.9", "--motions", "0.2",
                                "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["strength"], r["track"]) for r in rows] == [(0.0, False), (0.9, False), (0.9, True)]
    assert rows[1]["flicker"] < rows[0]["flicker"] or rows[0]["flicker"] == 0
    assert tune_stabilise.main(["--data_root", str(tmp_path / "nowhere"), "--splits", "val"]) == 2


def test_parse_stabilise_reads_the_command_line_form():
    from seg_jax.ops.stabilise import parse_stabilise
    assert parse_stabilise("off") == Stabilise() and not parse_stabilise("off").enabled
    assert parse_stabilise("0.97,0.3") == Stabilise(strength=0.97, motion=0.3)
    assert parse_stabilise(" 0.9, 0.2, 3, track ") == Stabilise(strength=0.9, motion=0.2, radius=3, track=True)
    for bad in ("0.9", "0.9,x", "0.9,0.2,2,3,4", "1.5,0.2"):
        with pytest.raises(ValueError, match="stabilise"):
            parse_stabilise(bad)
