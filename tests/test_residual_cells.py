"""Residual ConvLSTM cells (``residual_cells``): a zero start is the per-frame model exactly, and every runtime
(Flax, the folded fast path, ONNX) adds each cell's output to its input the same way."""
import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.artifacts import weights_folder
from seg_jax.bench.run import random_variables as bench_random_variables  # BN not the identity
from seg_jax.convert.convlstm_warm_start import zero_cells
from seg_jax.convert.init_from import load_init_variables
from seg_jax.inference import streaming
from seg_jax.models import build as model_build

RESIDUAL = {"name": "convlstm", "residual_cells": True}


def _clip(t=3, size=64, seed=0):
    return jnp.asarray(np.random.default_rng(seed).uniform(0, 1, (1, t, size, size, 3)), jnp.float32)


def test_zero_residual_cells_are_the_per_frame_model_exactly():
    shipped = str(weights_folder.shipped_weights_dir("mobilenet"))
    mobilenet = model_build.build_model({"name": "mobilenet"})
    v_mb = load_init_variables(shipped, model_build.init_variables(mobilenet, "mobilenet", jax.random.PRNGKey(0)))
    model = model_build.build_model(RESIDUAL)
    fresh = model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0))
    v = zero_cells(load_init_variables(shipped, fresh))
    clip = _clip()
    logits, state = model.apply(v, clip, train=False)
    want = mobilenet.apply(v_mb, clip[0], train=False)
    np.testing.assert_allclose(np.asarray(logits[0]), np.asarray(want), atol=1e-5)
    assert all(float(jnp.abs(h).max()) == 0.0 and float(jnp.abs(c).max()) == 0.0 for h, c in state)
    # the same zero cells without the residual path erase the decoder's features: a different function
    plain = model_build.build_model({"name": "convlstm"})
    other, _ = plain.apply(v, clip, train=False)
    assert float(jnp.abs(other[0] - want).max()) > 0.1


def test_fast_path_equals_flax_with_residual_cells():
    v = bench_random_variables("convlstm")
    plain = streaming.make_streaming_step("convlstm", v, model_config=RESIDUAL, input_size=(64, 64), fast=False)
    fast = streaming.make_streaming_step("convlstm", v, model_config=RESIDUAL, input_size=(64, 64), fast=True,
                                         dot_dtype="float32")
    not_residual = streaming.make_streaming_step("convlstm", v, input_size=(64, 64), fast=False)
    sp, sf, sn = plain.init_state(), fast.init_state(), not_residual.init_state()
    frames = np.asarray(_clip(3, 64, 1)[0] * 255, np.uint8)
    for frame in frames:
        sp, ap = plain(sp, frame)
        sf, af = fast(sf, frame)
        sn, an = not_residual(sn, frame)
        np.testing.assert_allclose(np.asarray(af), np.asarray(ap), atol=1e-4)
    assert float(np.abs(np.asarray(an) - np.asarray(ap)).max()) > 1e-3


def test_onnx_export_adds_the_cells_output_like_flax(tmp_path):
    import onnx

    from seg_jax.models.unet_mobilenet import UNetMobileNetConvLSTM
    from seg_jax.onnx.export import build_onnx
    from seg_jax.onnx.runtime import load_session
    v = bench_random_variables("convlstm")
    model = model_build.build_model(dict(RESIDUAL, depthwise_impl="grouped"))
    clip = np.asarray(_clip(2, 64, 2))
    logits, _ = model.apply(v, clip, train=False)
    path = tmp_path / "residual.onnx"
    onnx.save(build_onnx("convlstm", v, RESIDUAL), str(path))
    session = load_session(path)
    outputs = [o.name for o in session.get_outputs()]
    zeros = UNetMobileNetConvLSTM.initial_state(1, 64, 64)
    feeds = {f"{hc}{level}i": np.asarray(a) for level, pair in enumerate(zeros) for hc, a in zip("hc", pair)}
    for t in range(clip.shape[1]):
        res = dict(zip(outputs, session.run(outputs, dict(feeds, image=clip[:, t]))))
        np.testing.assert_allclose(res.pop("mask"), np.asarray(jax.nn.sigmoid(logits[:, t])), atol=1e-4)
        feeds = {name[:-1] + "i": value for name, value in res.items()}


def test_a_residual_clip_run_from_the_mobilenet_starts_with_zero_cells():
    from seg_jax.configs import default
    from seg_jax.training import loop as train
    config = default.get_default_config()
    config.model.name = "convlstm"
    config.model.residual_cells = True
    config.init_from = str(weights_folder.shipped_weights_dir("mobilenet"))
    model = model_build.build_model(config.model)
    variables = model_build.init_variables(model, "convlstm", jax.random.PRNGKey(0))
    loaded = train._apply_init_from(config, variables)
    cells = [c for name, c in loaded["params"]["decoder"].items() if name.startswith("convlstm_")]
    assert len(cells) == 4 and all(float(jnp.abs(p).max()) == 0.0 for c in cells for p in jax.tree_util.tree_leaves(c))
    config.model.residual_cells = False   # the paper's cells: the near pass-through warm start instead
    kept = train._apply_init_from(config, variables)
    assert float(jnp.abs(kept["params"]["decoder"]["convlstm_0"]["kernel"]).max()) > 0
