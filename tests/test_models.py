"""Model fidelity: parameter counts (paper), shapes at two resolutions, scan == stream, T=1 == paper."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.models import ConvLSTMCell, UNetMobileNetConvLSTM, create_model, get_spec
from seg_jax.models import build as model_build
from seg_jax.models.layers import depthwise_conv, keras_hard_sigmoid, upsample2x_bilinear


def _abstract_variables(name, h, w):
    model = create_model(name)
    x = model_build.dummy_input(name, 1, h, w)
    return model, jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False))


@pytest.mark.parametrize("name", ["unet", "mobilenet", "convlstm"])
@pytest.mark.parametrize("hw", [(256, 256), (160, 288)])
def test_parameter_count_and_output_shape(name, hw):
    model, variables = _abstract_variables(name, *hw)
    assert model_build.count_parameters(variables) == get_spec(name).paper_parameter_count
    x = model_build.dummy_input(name, 2, *hw, time_steps=3)
    out = jax.eval_shape(lambda v: model.apply(v, x, train=False), variables)
    logits = out[0] if get_spec(name).temporal else out
    assert logits.shape == x.shape[:-1] + (1,)
    assert logits.dtype == jnp.float32


def test_convlstm_parameters_are_the_papers():
    _, v2 = _abstract_variables("mobilenet", 64, 64)
    _, v3 = _abstract_variables("convlstm", 64, 64)
    lstm = {k: model_build.count_parameters(v) for k, v in v3["params"]["decoder"].items() if k.startswith("convlstm")}
    assert lstm == {"convlstm_0": 373_536, "convlstm_1": 373_536, "convlstm_2": 295_168, "convlstm_3": 18_496}
    # Model 2's parameter tree is model 3's minus the cells, so model-2 weights initialise model 3.
    shared = {k: v for k, v in v3["params"]["decoder"].items() if not k.startswith("convlstm")}
    assert jax.tree_util.tree_structure(shared) == jax.tree_util.tree_structure(dict(v2["params"]["decoder"]))


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 5])
def test_depthwise_shift_add_equals_grouped(stride, k):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 17, 12, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, 1, 5)), jnp.float32)
    a = depthwise_conv(x, kernel, stride, "shift_add")
    b = depthwise_conv(x, kernel, stride, "grouped")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_upsample_matches_half_pixel_bilinear_resize():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 5, 7, 3)), jnp.float32)
    expected = jax.image.resize(x, (1, 10, 14, 3), "bilinear")
    np.testing.assert_allclose(upsample2x_bilinear(x), expected, atol=1e-5)


@pytest.fixture(scope="module")
def convlstm_model_and_vars():
    model = UNetMobileNetConvLSTM(gate_activation="sigmoid")
    variables = model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0), 64, 64)
    return model, variables


def test_scan_over_clip_equals_streaming_frame_by_frame(convlstm_model_and_vars):
    model, variables = convlstm_model_and_vars
    clip = jax.random.uniform(jax.random.PRNGKey(1), (2, 3, 64, 64, 3))
    scanned, final_state = jax.jit(lambda v, c: model.apply(v, c, train=False))(variables, clip)
    step = jax.jit(lambda v, s, f: model.apply(v, s, f, method=model.step))
    state = UNetMobileNetConvLSTM.initial_state(2, 64, 64)
    for t in range(3):
        state, logits = step(variables, state, clip[:, t])
        np.testing.assert_allclose(logits, scanned[:, t], atol=1e-5)
    for (h1, c1), (h2, c2) in zip(state, final_state):
        np.testing.assert_allclose(h1, h2, atol=1e-5)
        np.testing.assert_allclose(c1, c2, atol=1e-5)
    # The recurrence matters: frame 2 depends on frame 1.
    alone, _ = jax.jit(lambda v, c: model.apply(v, c, train=False))(variables, clip[:, 2:3])
    assert float(jnp.max(jnp.abs(alone[:, 0] - scanned[:, 2]))) > 1e-6


@pytest.mark.parametrize("gate", ["hard_sigmoid", "sigmoid"])
def test_cell_with_zero_state_and_t1_is_the_papers_one_frame_convlstm(gate):
    """Keras ConvLSTM2D on a length-1 sequence from zero state: c = i*g, h = o*tanh(c), x-kernel only."""
    cell = ConvLSTMCell(4, gate_activation=gate)
    x = jax.random.normal(jax.random.PRNGKey(2), (1, 6, 5, 3))
    state = ConvLSTMCell.initial_state(1, 6, 5, 4)
    params = cell.init(jax.random.PRNGKey(3), state, x)
    (h, c), y = cell.apply(params, state, x)
    p = params["params"]
    z = jax.lax.conv_general_dilated(x, p["kernel"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["bias"]
    i, f, g, o = jnp.split(z, 4, axis=-1)
    act = keras_hard_sigmoid if gate == "hard_sigmoid" else jax.nn.sigmoid
    c_ref = act(i) * jnp.tanh(g)
    np.testing.assert_allclose(c, c_ref, atol=1e-6)
    np.testing.assert_allclose(h, act(o) * jnp.tanh(c_ref), atol=1e-6)
    np.testing.assert_allclose(y, h)


def test_model_t1_zero_state_equals_step_from_none(convlstm_model_and_vars):
    model, variables = convlstm_model_and_vars
    frame = jax.random.uniform(jax.random.PRNGKey(4), (1, 64, 64, 3))
    logits_clip, _ = model.apply(variables, frame[:, None], train=False)
    _, logits_step = model.apply(variables, None, frame, method=model.step)
    np.testing.assert_allclose(logits_clip[:, 0], logits_step, atol=1e-6)


@pytest.mark.parametrize("bad_shape, match", [
    ((64, 64, 3), "rank 4"), ((1, 64, 64, 4), "3 RGB channels"), ((1, 60, 64, 3), "divisible by 32")])
def test_bad_inputs_fail_with_a_clear_error(bad_shape, match):
    model = create_model("mobilenet")
    with pytest.raises(ValueError, match=match):
        jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(bad_shape), train=False))


def test_unknown_model_and_option():
    with pytest.raises(ValueError, match="unknown model 'mobilenetv2'.*convlstm"):
        create_model("mobilenetv2")
    with pytest.raises(ValueError, match="no option"):
        create_model("unet", depthwise_impl="grouped")


def test_unet_upconv_equals_flax_conv_transpose():
    """UNet's 2x2 stride-2 up-convolution: same parameters, initialisation and output as nn.ConvTranspose."""
    import flax.linen as nn

    from seg_jax.models.unet import UpConv2x2
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 7, 6)), jnp.float32)
    ours, flax_t = UpConv2x2(4), nn.ConvTranspose(4, (2, 2), strides=(2, 2), padding="SAME")
    v = ours.init(jax.random.key(3), x)
    v_flax = flax_t.init(jax.random.key(3), x)
    assert jax.tree_util.tree_map(jnp.shape, v) == jax.tree_util.tree_map(jnp.shape, v_flax)
    np.testing.assert_array_equal(np.asarray(v["params"]["kernel"]), np.asarray(v_flax["params"]["kernel"]))
    v = {"params": {"kernel": v["params"]["kernel"], "bias": jnp.arange(4, dtype=jnp.float32)}}
    np.testing.assert_allclose(np.asarray(ours.apply(v, x)), np.asarray(flax_t.apply(v, x)), atol=1e-5)
