"""``seg_jax.Segmenter``: weights folder with a manifest, any frame size, reset, lazy import."""
import subprocess
import sys

import numpy as np
import pytest

from seg_jax.artifacts.weights_folder import save_weights
from seg_jax.inference.segmenter import Segmenter, random_variables


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights") / "convlstm"
    save_weights(d, {"name": "convlstm"}, random_variables("convlstm"), {"input_size": [32, 32]})
    return d


def test_import_is_lazy():
    code = "import sys, seg_jax; assert 'jax' not in sys.modules; assert isinstance(seg_jax.Segmenter, type)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_segmenter_from_weights_folder(weights_dir):
    import seg_jax
    seg = seg_jax.Segmenter("convlstm", checkpoint=weights_dir)
    assert seg.base_size == (32, 32)  # from the manifest
    rng = np.random.default_rng(0)
    for hw in [(40, 56), (40, 56), (30, 50)]:  # resolution change mid-stream
        frame = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
        alpha = seg.step(frame)
        assert alpha.shape == hw and alpha.dtype == np.float32 and 0 <= alpha.min() and alpha.max() <= 1
    frame = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    seg.reset()
    a1 = seg.step(frame)
    seg.reset()
    np.testing.assert_allclose(seg.step(frame), a1, atol=1e-6)  # reset -> same as a fresh stream
    # other frame formats: grey, RGBA, float
    assert seg.step(frame[..., 0]).shape == (40, 56)
    assert seg.step(np.concatenate([frame, frame[..., :1]], -1)).shape == (40, 56)
    assert seg.step(frame.astype(np.float32) / 255).shape == (40, 56)


def test_segmenter_errors(tmp_path, weights_dir):
    with pytest.raises(ValueError, match="unknown model"):
        Segmenter("resnet")
    with pytest.raises(FileNotFoundError):
        Segmenter("mobilenet", checkpoint=tmp_path / "nope")
    with pytest.raises(ValueError, match="convlstm"):
        Segmenter("mobilenet", checkpoint=weights_dir)


def test_frame_rules_one_per_dtype():
    from seg_jax.inference.segmenter import MAX_FRAME_SIDE, as_rgb_uint8
    f = np.full((2, 3, 3), 0.5, np.float32)
    f[0, 0, 0] = 1.7                                   # one bright pixel does not switch the scale to 0..255
    out = as_rgb_uint8(f)
    assert out.dtype == np.uint8 and out[1, 1, 1] == 128 and out[0, 0, 0] == 255
    assert as_rgb_uint8(np.full((2, 2), 65535, np.uint16))[0, 0, 0] == 255
    assert as_rgb_uint8(np.full((2, 2), 32896, np.uint16))[0, 0, 0] == 128      # scaled, not clipped
    assert as_rgb_uint8(np.ones((2, 2), bool))[0, 0, 0] == 255
    assert as_rgb_uint8(np.full((2, 2, 4), 300, np.int32))[0, 0, 0] == 255
    with pytest.raises(ValueError, match="frame is empty"):
        as_rgb_uint8(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match=f"limit is {MAX_FRAME_SIDE} px"):
        as_rgb_uint8(np.broadcast_to(np.uint8(0), (MAX_FRAME_SIDE + 1, 4, 3)))
    with pytest.raises(ValueError, match="dtype complex64"):
        as_rgb_uint8(np.zeros((2, 2, 3), np.complex64))


def test_downloaded_weights_cannot_exhaust_memory_and_unchecked_ones_warn(tmp_path):
    import json
    d = tmp_path / "mobilenet"
    save_weights(d, {"name": "mobilenet"}, random_variables("mobilenet"), {"input_size": [32, 32]})
    manifest = json.loads((d / "manifest.json").read_text())
    (d / "manifest.json").write_text(json.dumps({**manifest, "input_size": [32000, 32000]}))
    with pytest.raises(ValueError, match="bad input_size.*up to 2048"):
        Segmenter("mobilenet", checkpoint=d)
    manifest.pop("sha256")
    (d / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="has no sha256"):
        Segmenter("mobilenet", checkpoint=d)
    with pytest.raises(ValueError, match="up to 2048"):
        Segmenter("mobilenet", checkpoint=d, input_size=4096)
