"""ConvLSTM warm start from a trained U-Net MobileNet, and the learning-rate warm-up that protects it."""
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from seg_jax import weights_folder
from seg_jax.convert.convlstm_warm_start import warm_start_convlstm
from seg_jax.convert.init_from import load_init_variables
from seg_jax.models import build as model_build
from seg_jax.steps import learning_rate_schedule

SHIPPED = str(weights_folder.shipped_weights_dir("mobilenet"))


def _model(name):
    cfg = ml_collections.ConfigDict(dict(name=name, dtype="float32", depthwise_impl="auto",
                                         gate_activation="hard_sigmoid", encoder_bn_momentum=0.99))
    return model_build.build_model(cfg)


def _frames(n=2, size=64, seed=0):
    """Smooth random RGB images in [0, 1], (n, size, size, 3): a bright blob on a textured background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for _ in range(n):
        cy, cx = rng.uniform(0.3, 0.7, 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.05)
        img = 0.3 + 0.2 * np.sin(8 * xx[..., None] + rng.uniform(0, 6, 3)) + 0.4 * blob[..., None]
        out.append(np.clip(img, 0, 1))
    return jnp.asarray(np.stack(out), jnp.float32)


@pytest.fixture(scope="module")
def outputs():
    x = _frames()
    mobilenet = _model("mobilenet")
    fresh = model_build.init_variables(mobilenet, "mobilenet", jax.random.PRNGKey(0), 64, 64)
    v_mb = load_init_variables(SHIPPED, fresh)
    p_mb = jax.nn.sigmoid(mobilenet.apply(v_mb, x, train=False))
    convlstm = _model("convlstm")
    v_cl = load_init_variables(SHIPPED, model_build.init_variables(convlstm, "convlstm", jax.random.PRNGKey(0), 64, 64))
    clip = jnp.repeat(x[:, None], 3, axis=1)

    def probs(v):
        logits, _ = convlstm.apply(v, clip, train=False)
        return jax.nn.sigmoid(logits).reshape(x.shape[0], 3, 64, 64, 1)
    return np.asarray(p_mb), np.asarray(probs(v_cl)), np.asarray(probs(warm_start_convlstm(v_cl))), v_cl


def test_warm_started_convlstm_computes_nearly_the_mobilenet_function(outputs):
    p_mb, _, p_warm, _ = outputs
    for t in range(3):  # first frame from a zero state, then with the carried state
        assert np.abs(p_warm[:, t] - p_mb).mean() < 0.03, t


def test_random_cells_do_not(outputs):
    p_mb, p_random, _, _ = outputs
    assert np.abs(p_random[:, 0] - p_mb).mean() > 0.1


def test_warm_start_sets_gates_and_rescales_readers(outputs):
    *_, v_cl = outputs
    warm = warm_start_convlstm(v_cl, scale=0.1)
    cell = warm["params"]["decoder"]["convlstm_1"]
    f = 72
    assert np.allclose(cell["bias"][:f], 2.0) and np.allclose(cell["bias"][f:2 * f], -2.0)
    assert np.allclose(cell["bias"][2 * f:3 * f], 0.0) and np.allclose(cell["bias"][3 * f:], 2.0)
    k = np.asarray(cell["kernel"])
    assert np.allclose(k[1, 1, np.arange(f), 2 * f + np.arange(f)], 0.1) and np.count_nonzero(k) == f
    gain = 0.9 * 0.9 * 0.1
    head_before = np.asarray(v_cl["params"]["decoder"]["head"]["kernel"])
    assert np.allclose(np.asarray(warm["params"]["decoder"]["head"]["kernel"]), head_before / gain, rtol=1e-5)


def test_warm_start_rejects_mobilenet_variables():
    mobilenet = _model("mobilenet")
    shapes = jax.eval_shape(lambda: model_build.init_variables(mobilenet, "mobilenet", jax.random.PRNGKey(0), 64, 64))
    with pytest.raises(ValueError, match="not the convlstm model's"):
        warm_start_convlstm(shapes)


def test_learning_rate_warm_up_is_linear_then_the_schedule():
    cfg = ml_collections.ConfigDict(dict(learning_rate=1e-3, lr_boundaries=(50,), lr_scales=(0.1,), warmup_steps=10))
    schedule = learning_rate_schedule(cfg)
    assert float(schedule(0)) == pytest.approx(1e-4)
    assert float(schedule(4)) == pytest.approx(5e-4)
    assert float(schedule(9)) == pytest.approx(1e-3)
    assert float(schedule(60)) == pytest.approx(1e-4)


def test_shipped_convlstm_is_the_warm_start_of_the_shipped_mobilenet(tmp_path):
    """The shipped ConvLSTM weights are reproducible with the documented command (up to float rounding)."""
    from flax import serialization, traverse_util

    from seg_jax.convert.convlstm_warm_start import warm_start_from_weights

    out = warm_start_from_weights(SHIPPED, str(tmp_path / "convlstm"))
    shipped_dir = weights_folder.shipped_weights_dir("convlstm")

    def flat(folder):
        raw = (Path(folder) / weights_folder.WEIGHTS_FILE).read_bytes()
        return traverse_util.flatten_dict(serialization.msgpack_restore(raw))
    made, shipped = flat(out), flat(shipped_dir)
    assert made.keys() == shipped.keys()
    for key in made:
        np.testing.assert_allclose(made[key], shipped[key], atol=1e-5, rtol=1e-5, err_msg=str(key))
