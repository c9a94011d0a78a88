"""ConvLSTM warm start from a trained U-Net MobileNet, and the learning-rate warm-up that protects it."""
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from seg_jax.artifacts import weights_folder
from seg_jax.convert.convlstm_warm_start import warm_start_convlstm
from seg_jax.convert.init_from import load_init_variables
from seg_jax.models import build as model_build
from seg_jax.training.optimizer import learning_rate_schedule

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
    """The shipped ConvLSTM weights are reproducible with the options their manifest records (up to float
    rounding), and declare the settle_steps those options need."""
    import json

    from flax import serialization, traverse_util

    from seg_jax.convert.convlstm_warm_start import warm_start_from_weights

    shipped_dir = weights_folder.shipped_weights_dir("convlstm")
    manifest = json.loads((Path(shipped_dir) / "manifest.json").read_text())
    options = manifest["warm_start"]
    out = warm_start_from_weights(SHIPPED, str(tmp_path / "convlstm"), scale=options["scale"],
                                  forget_bias=options["forget_bias"],
                                  recurrent_init_scale=options.get("recurrent_init_scale", 0.1),
                                  input_gate=options.get("input_gate", "open"))
    made_manifest = json.loads((Path(out) / "manifest.json").read_text())
    assert made_manifest["settle_steps"] == manifest.get("settle_steps", 0)
    assert made_manifest["cells"]["kind"] == manifest["cells"]["kind"] == "hand-set"

    def flat(folder):
        raw = (Path(folder) / weights_folder.WEIGHTS_FILE).read_bytes()
        return traverse_util.flatten_dict(serialization.msgpack_restore(raw))
    made, shipped = flat(out), flat(shipped_dir)
    assert made.keys() == shipped.keys()
    for key in made:
        np.testing.assert_allclose(made[key], shipped[key], atol=1e-5, rtol=1e-5, err_msg=str(key))


def test_settle_steps_cover_the_slowest_cell():
    from seg_jax.convert.convlstm_warm_start import settle_steps_for
    assert settle_steps_for(-2.0, "open") == 0                     # readers calibrated to the first frame
    assert settle_steps_for(-2.5, "complement") == 0               # hard_sigmoid(-2.5) = 0: no memory
    assert settle_steps_for([0.0, -2.5, -2.5, -2.5], "complement") == 6   # f = 0.5: 0.5 ** 7 < 1e-2
    with pytest.raises(ValueError, match="one value or 4"):
        settle_steps_for([0.0, 0.0], "complement")
    with pytest.raises(ValueError, match="input_gate"):
        warm_start_convlstm({"params": {}}, input_gate="closed")


def test_moving_average_cells_settled_on_a_still_give_the_mobilenet_answer(outputs):
    """With input gate 1 - f the cells average over time; settled on the first frame, a still image gets the
    per-frame model's answer, and without settling it does not (the memory starts empty)."""
    from seg_jax.convert.convlstm_warm_start import settle_steps_for
    p_mb, *_, v_cl = outputs
    biases = [0.0, 0.0, -2.5, -2.5]                       # f = 0.5 at 1/8 and 1/4, none finer
    warm = warm_start_convlstm(v_cl, scale=0.02, forget_bias=biases, recurrent_init_scale=0.0,
                               input_gate="complement")
    cell = warm["params"]["decoder"]["convlstm_0"]
    assert np.allclose(cell["bias"][:72], 0.0) and not np.any(np.asarray(cell["recurrent_kernel"]))
    settle = settle_steps_for(biases, "complement")
    convlstm = _model("convlstm")
    x = _frames()
    clip = jnp.repeat(x[:, None], settle + 1, axis=1)
    logits, _ = convlstm.apply(warm, clip, train=False)
    p = np.asarray(jax.nn.sigmoid(logits))
    assert np.abs(p[:, -1] - p_mb).mean() < 0.01
    assert np.abs(p[:, 0] - p_mb).mean() > 3 * np.abs(p[:, -1] - p_mb).mean()


def test_segmenter_settles_a_temporal_stream_on_its_first_frame(outputs):
    from seg_jax import Segmenter
    from seg_jax.convert.convlstm_warm_start import settle_steps_for
    from seg_jax.ops.stabilise import Stabilise
    p_mb, *_, v_cl = outputs
    biases = [0.0, -2.5, -2.5, -2.5]
    warm = warm_start_convlstm(v_cl, scale=0.02, forget_bias=biases, recurrent_init_scale=0.0,
                               input_gate="complement")
    frame = (np.asarray(_frames(1, 64, seed=3)[0]) * 255).astype(np.uint8)
    mobilenet = Segmenter("mobilenet", SHIPPED, input_size=64, stabilise=Stabilise())
    expected = mobilenet.segment(frame)
    settled = Segmenter("convlstm", variables=warm, input_size=64, stabilise=Stabilise(),
                        settle_steps=settle_steps_for(biases, "complement"))
    unsettled = Segmenter("convlstm", variables=warm, input_size=64, stabilise=Stabilise(), settle_steps=0)
    err_settled = np.abs(settled.segment(frame) - expected).mean()
    assert err_settled < 0.01
    assert np.abs(unsettled.segment(frame) - expected).mean() > 3 * err_settled
    with pytest.raises(ValueError, match="bad settle_steps"):
        Segmenter("convlstm", variables=warm, settle_steps=-1)


def test_memory_sweep_options_parse_and_invert_the_gate():
    from research.tune_convlstm_memory import forget_bias, main, parse_forgets
    from seg_jax.models.layers import keras_hard_sigmoid
    assert parse_forgets("0,0,0,0;0.4,0,0,0.1") == [(0, 0, 0, 0), (0.4, 0, 0, 0.1)]
    for bad in ("0.4,0", "a,b,c,d", ""):
        with pytest.raises(ValueError, match="--forgets"):
            parse_forgets(bad)
    for f in (0.0, 0.3, 0.4, 0.9):
        assert float(keras_hard_sigmoid(jnp.float32(forget_bias(f)))) == pytest.approx(f, abs=1e-6)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        forget_bias(1.0)
    assert main(["--forgets", "0.4", "--data_root", "/nonexistent"]) == 2
