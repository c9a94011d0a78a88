"""Keras MobileNetV3Large -> seg_jax encoder conversion, and ``init_from`` loading."""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from seg_jax.artifacts.weights_folder import save_weights
from seg_jax.convert import load_init_variables
from seg_jax.convert.keras_mobilenet import (
    convert_keras_model,
    convert_layer_weights,
    flax_target,
    keras_tap_outputs,
    layer_weights_from_h5,
    layer_weights_from_keras_model,
)
from seg_jax.convert.keras_mobilenet import main as convert_main
from seg_jax.models.build import build_model, dummy_input
from seg_jax.models.mobilenet_v3 import MobileNetV3LargeEncoder

SIZE = 64
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def abstract_zeros(model_name: str, fill: float = 0.0) -> dict:
    """Model variables of the right structure without running init (eval_shape is instant)."""
    model = build_model({"name": model_name})
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_input(model_name, 1, 64, 64), train=False))
    return jax.tree_util.tree_map(lambda s: jnp.full(s.shape, fill, s.dtype), dict(shapes))


@pytest.fixture(scope="module")
def keras_model():
    if os.environ.get("KERAS_BACKEND", "jax") != "jax":
        pytest.skip("the Keras check runs on KERAS_BACKEND=jax")
    os.environ["KERAS_BACKEND"] = "jax"
    keras = pytest.importorskip("keras")
    model = keras.applications.MobileNetV3Large(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    for layer in model.layers:  # randomise everything Keras initialises to constants (BN stats, biases)
        new = []
        for w in layer.weights:
            name = (getattr(w, "path", None) or w.name).split("/")[-1]
            v = np.asarray(w.numpy())
            if name == "moving_variance":
                v = rng.uniform(0.5, 2.0, v.shape)
            elif name in ("gamma",):
                v = rng.uniform(0.5, 1.5, v.shape)
            elif name in ("beta", "moving_mean", "bias"):
                v = rng.normal(0.0, 0.2, v.shape)
            new.append(v.astype(np.float32))
        if new:
            layer.set_weights(new)
    return keras, model


@pytest.fixture(scope="module")
def keras_weights(keras_model):
    return layer_weights_from_keras_model(keras_model[1])


def test_layer_names_both_keras_styles():
    assert flax_target("expanded_conv_1_expand") == (("expanded_conv_1", "expand"), "conv")
    assert flax_target("expanded_conv_1/expand") == (("expanded_conv_1", "expand"), "conv")
    assert flax_target("expanded_conv_1_expand_bn") == (("expanded_conv_1", "expand_BatchNormalization"), "bn")
    assert flax_target("expanded_conv_1/expand/BatchNorm") == (("expanded_conv_1", "expand_BatchNormalization"), "bn")
    assert flax_target("expanded_conv_depthwise") == (("expanded_conv", "depthwise"), "depthwise")
    assert flax_target("expanded_conv_3/squeeze_excite/Conv_1") == (("expanded_conv_3", "squeeze_excite_Conv_1"),
                                                                     "conv")
    assert flax_target("expanded_conv_3_squeeze_excite_conv") == (("expanded_conv_3", "squeeze_excite_Conv"), "conv")
    assert flax_target("Conv") == (("conv",), "conv")
    assert flax_target("Conv/BatchNorm") == (("conv_BatchNormalization",), "bn")
    assert flax_target("conv_bn") == (("conv_BatchNormalization",), "bn")
    assert flax_target("conv_1") is None and flax_target("Conv_1") is None and flax_target("re_lu_3") is None


def test_keras_taps_match(keras_model, keras_weights):
    """Our encoder's four taps equal Keras' intermediate outputs (random weights and BN statistics)."""
    keras, model = keras_model
    variables, skipped = convert_layer_weights(keras_weights)
    assert "conv_1" in skipped and "expanded_conv_14_project" in skipped and "expanded_conv_12_depthwise" in skipped
    images = np.random.default_rng(1).uniform(0.0, 1.0, (2, SIZE, SIZE, 3)).astype(np.float32)
    taps_model = keras.Model(model.inputs, keras_tap_outputs(model))
    expected = [np.asarray(t) for t in taps_model(images * 255.0, training=False)]
    encoder = MobileNetV3LargeEncoder()
    ours = jax.jit(lambda v, x: encoder.apply(v, x, train=False))(variables, images)
    for name, got, want in zip(ours._fields, ours, expected):
        assert got.shape == want.shape, name
        assert np.abs(want).max() > 1e-2, name  # a meaningful comparison, not all zeros
        err = float(np.max(np.abs(np.asarray(got) - want)))
        assert err < 1e-4, f"{name}: max abs error {err}"


def _equal_trees(a, b):
    fa, fb = traverse_util.flatten_dict(a), traverse_util.flatten_dict(b)
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(np.asarray(fa[k]), np.asarray(fb[k]), err_msg=str(k))


def test_h5_cli_and_init_from(keras_model, keras_weights, tmp_path):
    """Keras 3 .weights.h5 -> CLI -> folder -> init_from on both MobileNet models."""
    _, model = keras_model
    h5 = tmp_path / "mobilenet_v3_large.weights.h5"
    model.save_weights(str(h5))
    assert convert_main(["--weights", str(h5), "--out", str(tmp_path / "enc")]) == 0
    reference = convert_keras_model(model)
    for name in ("mobilenet", "convlstm"):
        fresh = abstract_zeros(name)
        loaded = load_init_variables(tmp_path / "enc", fresh)
        for col in ("params", "batch_stats"):
            _equal_trees(loaded[col]["encoder"], reference[col])
        np.testing.assert_array_equal(loaded["params"]["decoder"]["head"]["kernel"], 0.0)  # rest untouched
    # a Keras .h5 file directly as init_from
    _equal_trees(load_init_variables(h5, abstract_zeros("mobilenet"))["params"]["encoder"], reference["params"])


def test_legacy_tf_keras_h5(keras_weights, tmp_path):
    """A tf.keras 2.x style HDF5 file ('expanded_conv_1/expand', 'Conv/BatchNorm', depthwise_kernel)."""
    h5py = pytest.importorskip("h5py")

    def legacy_name(name):
        name = name.replace("squeeze_excite_conv", "squeeze_excite/Conv")
        if name.startswith("conv"):
            name = "C" + name[1:]
        for op in ("expand", "depthwise", "project"):
            name = name.replace(f"_{op}", f"/{op}")
        return name[:-3] + "/BatchNorm" if name.endswith("_bn") else name

    path = tmp_path / "legacy.h5"
    with h5py.File(path, "w") as f:
        names = []
        for lname, weights in keras_weights.items():
            new = legacy_name(lname)
            names.append(new.encode())
            g = f.create_group(new)
            wnames = []
            for wname, value in weights.items():
                if "depthwise" in new and not new.endswith("BatchNorm") and wname == "kernel":
                    wname = "depthwise_kernel"
                full = f"{new}/{wname}:0"
                g.create_dataset(full, data=value)
                wnames.append(full.encode())
            g.attrs["weight_names"] = wnames
        f.attrs["layer_names"] = names
    assert "expanded_conv_1/expand/BatchNorm" in layer_weights_from_h5(path)
    _equal_trees(convert_layer_weights(layer_weights_from_h5(path))[0],
                 convert_layer_weights(keras_weights)[0])


def test_init_from_full_model_and_errors(tmp_path):
    # a trained mobilenet initialises the shared part of convlstm
    mobilenet = abstract_zeros("mobilenet", 0.5)
    save_weights(tmp_path / "mob", {"name": "mobilenet"}, mobilenet)
    loaded = load_init_variables(tmp_path / "mob", abstract_zeros("convlstm"))
    np.testing.assert_array_equal(loaded["params"]["decoder"]["head"]["kernel"], 0.5)
    np.testing.assert_array_equal(loaded["params"]["decoder"]["convlstm_0"]["bias"], 0.0)
    with pytest.raises(ValueError, match="none of its weights fit"):
        load_init_variables(tmp_path / "mob", abstract_zeros("unet"))
    lstm = save_weights(tmp_path / "lstm", {"name": "convlstm"}, abstract_zeros("convlstm", 0.25))
    loaded = load_init_variables(lstm, abstract_zeros("mobilenet"))  # extra ConvLSTM cells are ignored
    np.testing.assert_array_equal(loaded["params"]["decoder"]["head"]["kernel"], 0.25)
    with pytest.raises(ValueError, match="no place in the model"):
        load_init_variables(lstm, abstract_zeros("mobilenet"), strict=True)
    with pytest.raises(FileNotFoundError):
        load_init_variables(tmp_path / "nope", mobilenet)
    bad = abstract_zeros("mobilenet")
    bad["params"]["encoder"]["conv"]["kernel"] = jnp.zeros((3, 3, 3, 8))
    with pytest.raises(ValueError, match="has shape"):
        load_init_variables(tmp_path / "mob", bad)


def test_init_from_training_workdir(tmp_path, monkeypatch):
    """A training workdir goes through seg_jax.training.checkpointing (its model name read from config.json)."""
    from seg_jax.training import checkpointing

    (tmp_path / "config.json").write_text('{"model": {"name": "mobilenet"}}')
    calls = []
    monkeypatch.setattr(checkpointing, "has_checkpoint", lambda p: True)
    monkeypatch.setattr(checkpointing, "restore_inference_state",
                        lambda p, **kw: calls.append(p) or (abstract_zeros("mobilenet", 0.5),
                                                      {"model": {"name": "mobilenet"}}, str(p)))
    loaded = load_init_variables(tmp_path, abstract_zeros("convlstm"))
    assert calls == [tmp_path]
    np.testing.assert_array_equal(loaded["params"]["encoder"]["conv"]["kernel"], 0.5)
