"""``every``: the network on every N-th frame of a stream, the held alpha refined on the frames between."""
import numpy as np
import pytest

from seg_jax.inference.segmenter import MAX_EVERY, Segmenter, check_every
from seg_jax.live.cli import main
from seg_jax.ops.stabilise import Stabilise


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    out = []
    for i in range(7):
        f = np.full((48, 64, 3), 40, np.uint8)
        f[12:, 20 + 2 * i:40 + 2 * i] = (210, 160, 130)             # a "person" moving right
        out.append(np.clip(f + rng.integers(0, 8, f.shape), 0, 255).astype(np.uint8))
    return out


def test_network_runs_on_every_nth_frame_and_the_held_alpha_follows_the_picture(frames, monkeypatch):
    off = Stabilise()                            # no hold: network frames then match frame for frame
    every = Segmenter("mobilenet", "random", input_size=32, every=3, stabilise=off)
    each = Segmenter("mobilenet", "random", input_size=32, stabilise=off)
    step = every.streaming_step((32, 32))
    calls = []
    run = type(step).step_keeping_prob
    monkeypatch.setattr(type(step), "step_keeping_prob", lambda self, *a: calls.append(1) or run(self, *a))
    alphas = [every.step(f) for f in frames]
    assert len(calls) == 3                                           # frames 0, 3 and 6
    reference = [each.step(f) for f in frames]
    for i in (0, 3):
        np.testing.assert_allclose(alphas[i], reference[i], atol=1e-6)   # network frames: the same answer
    held = step.step_keeping_prob(step.init_state(), frames[0])[2]
    np.testing.assert_allclose(alphas[1], np.asarray(step.refine_held(held, frames[1])), atol=1e-6)
    assert np.abs(alphas[1] - alphas[0]).max() > 1e-3                # refined on the new frame, not copied
    every.reset()
    np.testing.assert_allclose(every.step(frames[5]), each.segment(frames[5]), atol=1e-5)  # reset: network


def test_bad_every_is_one_line(capsys, tmp_path):
    assert check_every(MAX_EVERY) == MAX_EVERY
    for bad in ("0", "-2", str(MAX_EVERY + 1)):
        assert main(["--source", "sample", "--every", bad, "-o", str(tmp_path / "x.mp4")]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--every must be a whole number of frames" in err
    assert not list(tmp_path.iterdir())
    with pytest.raises(ValueError, match="every must be"):
        Segmenter("mobilenet", "random", every=2.5)
