"""jax.export artifacts: reloaded in a fresh process that imports only jax, they reproduce the model."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.artifacts import export as seg_export
from seg_jax.artifacts.weights_folder import save_weights
from seg_jax.models.build import build_model, dummy_input

SIZE = 64

# Runs in a fresh interpreter: only jax and numpy, never seg_jax.
LOADER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from jax import export
    kind, art_dir, stem = sys.argv[1], sys.argv[2], sys.argv[3]
    inputs = dict(np.load(f"{art_dir}/inputs.npz"))
    manifest = json.load(open(f"{art_dir}/{stem}.manifest.json"))
    load = lambda name: export.deserialize(open(f"{art_dir}/" + manifest["functions"][name]["file"], "rb").read())
    out = {}
    if kind == "predict":
        fn = load("predict")
        out["mask2"] = np.asarray(fn.call(inputs["images"]))
        out["mask1"] = np.asarray(fn.call(inputs["images"][:1]))  # the batch dimension is symbolic
        out["mask_small"] = np.asarray(fn.call(inputs["images"][:1, :32, :64]))  # and so are H, W here
    else:
        step, clip = load("step"), load("clip")
        b = inputs["clips"].shape[0]
        state = tuple(np.zeros([b] + a["shape"][1:], np.float32) for a in manifest["state"]["arrays"])
        masks = []
        s = state
        for t in range(inputs["clips"].shape[1]):
            s, m = step.call(s, inputs["clips"][:, t])
            masks.append(np.asarray(m))
        out["step_masks"] = np.stack(masks, 1)
        out["step_state0"] = np.asarray(s[0])
        s, m = clip.call(state, inputs["clips"])
        out["clip_masks"] = np.asarray(m)
        out["clip_state0"] = np.asarray(s[0])
    assert not any(m == "seg_jax" or m.startswith("seg_jax.") for m in sys.modules), "seg_jax was imported"
    np.savez(f"{art_dir}/outputs.npz", **out)
""")


def random_variables(model, model_name: str, seed: int) -> dict:
    """He-scaled random variables from ``eval_shape`` (a real init compiles for a minute on a busy CPU)."""
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_input(model_name, 1, SIZE, SIZE),
                                               train=False))
    rng = np.random.default_rng(seed)

    def fill(path, s):
        name = jax.tree_util.keystr(path)
        if "var'" in name:
            v = rng.uniform(0.5, 1.5, s.shape)
        elif "kernel" in name:
            v = rng.normal(0.0, 1.0 / np.sqrt(np.prod(s.shape[:-1])), s.shape)
        elif "scale" in name:
            v = rng.uniform(0.5, 1.5, s.shape)
        else:  # biases, BN shifts and means
            v = rng.normal(0.0, 0.1, s.shape)
        return jnp.asarray(v, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, {k: shapes[k] for k in ("params", "batch_stats")})


def run_loader(kind: str, art_dir, stem: str) -> dict:
    script = art_dir / "loader.py"
    script.write_text(LOADER)
    # cwd = art_dir and -I (isolated mode) so the repo checkout cannot be imported by accident
    res = subprocess.run([sys.executable, "-I", str(script), kind, str(art_dir), stem], cwd=art_dir,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return dict(np.load(art_dir / "outputs.npz"))


def test_mobilenet_artifact_roundtrip(tmp_path):
    model = build_model({"name": "mobilenet", "depthwise_impl": "grouped"})
    variables = random_variables(model, "mobilenet", 0)
    save_weights(tmp_path / "w", {"name": "mobilenet"}, variables)
    out = tmp_path / "art" / "model.jaxexport"
    assert seg_export.main(["--model", "mobilenet", "--checkpoint", str(tmp_path / "w"), "--out", str(out),
                            "--dynamic-size", "--platforms", "cpu"]) == 0
    manifest = json.loads((tmp_path / "art" / "model.manifest.json").read_text())
    assert manifest["functions"]["predict"]["inputs"]["images"]["shape"] == ["b", "32*h", "32*w", 3]
    assert "[0, 1]" in manifest["functions"]["predict"]["inputs"]["images"]["meaning"]

    images = np.random.default_rng(0).uniform(0, 1, (2, SIZE, SIZE, 3)).astype(np.float32)
    np.savez(tmp_path / "art" / "inputs.npz", images=images)
    want = np.asarray(jax.nn.sigmoid(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, images)))
    got = run_loader("predict", tmp_path / "art", "model")
    assert 0.01 < want.std() and 0.0 < want.mean() < 1.0  # a non-degenerate mask
    np.testing.assert_allclose(got["mask2"], want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["mask1"], want[:1], atol=1e-5, rtol=0)
    want_small = jax.nn.sigmoid(model.apply(variables, images[:1, :32, :64], train=False))
    np.testing.assert_allclose(got["mask_small"], np.asarray(want_small), atol=1e-5, rtol=0)


def test_convlstm_step_and_clip_artifacts(tmp_path):
    t = 2
    model = build_model({"name": "convlstm", "depthwise_impl": "shift_add"})
    variables = random_variables(model, "convlstm", 1)
    art = tmp_path / "art"
    paths = seg_export.export_to_files("convlstm", art / "lstm.jaxexport", checkpoint=save_weights(
        tmp_path / "w", {"name": "convlstm"}, variables), height=SIZE, width=SIZE,
        depthwise_impl="shift_add", clip_length=t)
    assert paths["clip"].name == "lstm.clip.jaxexport" and paths["step"].exists()

    clips = np.random.default_rng(2).uniform(0, 1, (2, t, SIZE, SIZE, 3)).astype(np.float32)
    np.savez(art / "inputs.npz", clips=clips)
    logits, state = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, clips)
    want = np.asarray(jax.nn.sigmoid(logits))
    assert 1e-3 < want.std()  # not a constant output
    got = run_loader("stream", art, "lstm")
    np.testing.assert_allclose(got["clip_masks"], want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["step_masks"], want, atol=1e-5, rtol=0)  # streaming == scanning the clip
    np.testing.assert_allclose(got["clip_state0"], np.asarray(state[0][0]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got["step_state0"], np.asarray(state[0][0]), atol=1e-5, rtol=0)


def test_missing_shipped_weights_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("seg_jax.artifacts.weights_folder.SHIPPED_WEIGHTS_DIR", tmp_path / "none")
    assert seg_export.main(["--model", "mobilenet", "--out", str(tmp_path / "m.jaxexport")]) == 2
    assert "no shipped weights" in capsys.readouterr().err
