"""BatchNorm statistics re-estimated on real images: exact pooled moments, measured momenta, the CLI end to end."""
import os

import cv2
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from seg_jax.convert import recompute_batch_stats as rbs


class _OneNorm(nn.Module):
    """A single BatchNorm on the input, so its population statistics are the input's own."""
    momentum: float = 0.9

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.BatchNorm(use_running_average=not train, momentum=self.momentum, name="bn")(x)


def test_pooled_statistics_equal_the_whole_datas_mean_and_variance():
    model = _OneNorm(momentum=0.9)
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.normal(1.0, 2.0, (4, 6, 5, 3)), jnp.float32)
    b = jnp.asarray(rng.normal(-3.0, 0.5, (2, 4, 7, 3)), jnp.float32)   # another size and batch
    variables = model.init(jax.random.PRNGKey(0), a)
    momenta = rbs.layer_momenta(model, variables, a)
    assert momenta == {("bn", "mean"): pytest.approx(0.9, abs=1e-6), ("bn", "var"): pytest.approx(0.9, abs=1e-6)}
    new = rbs.recompute(model, variables, [(a, float(a.shape[0] * 6 * 5)), (b, float(b.shape[0] * 4 * 7))])
    pixels = np.concatenate([np.asarray(a).reshape(-1, 3), np.asarray(b).reshape(-1, 3)])
    np.testing.assert_allclose(new["batch_stats"]["bn"]["mean"], pixels.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(new["batch_stats"]["bn"]["var"], pixels.var(0), rtol=1e-3)
    assert new["params"] is variables["params"]
    with pytest.raises(ValueError, match="no images"):
        rbs.recompute(model, variables, [])


def test_the_mobilenets_momenta_are_read_from_the_model():
    from seg_jax.inference.segmenter import random_variables
    from seg_jax.models.build import build_model
    from seg_jax.models.layers import KERAS_BN_MOMENTUM
    model = build_model({"name": "mobilenet"})
    variables = random_variables("mobilenet")
    momenta = rbs.layer_momenta(model, variables, jnp.zeros((1, 32, 32, 3)))
    decoder = {m for k, m in momenta.items() if k[0] == "decoder"}
    assert decoder and all(m == pytest.approx(KERAS_BN_MOMENTUM, abs=1e-5) for m in decoder)
    assert len(momenta) == len(traverse_util.flatten_dict(variables["batch_stats"]))


def _write(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture(scope="module")
def tiny_real(tmp_path_factory):
    """Every source's layout with a few train images of two aspect ratios (no held-out stems: train = all)."""
    root = tmp_path_factory.mktemp("real")
    rng = np.random.default_rng(0)
    for sub in ("portraits", "selfies", "people", "fullbody"):
        for i, hw in enumerate([(40, 30), (30, 40), (40, 30)]):
            _write(root / sub / "images" / f"x{i}.jpg", rng.integers(0, 255, (*hw, 3), dtype=np.uint8))
            _write(root / sub / "masks" / f"x{i}.png", np.full(hw, 255, np.uint8))
    for t in range(2):
        _write(root / "davis" / "seqa" / "frames" / f"{t:05d}.jpg", rng.integers(0, 255, (27, 48, 3), np.uint8))
        _write(root / "davis" / "seqa" / "masks" / f"{t:05d}.png", np.zeros((27, 48), np.uint8))
    return root


def test_the_cli_replaces_only_batch_stats_and_records_how(tiny_real, tmp_path):
    from seg_jax.artifacts import model_io, weights_folder
    from seg_jax.inference.segmenter import random_variables
    start = tmp_path / "start"
    weights_folder.save_weights(start, {"name": "mobilenet"}, random_variables("mobilenet", bn_jitter=True),
                                {"input_size": [64, 64], "keep_aspect": True, "commands": ["made by the test"]})
    out = tmp_path / "out"
    assert rbs.main(["--weights", str(start), "--data_root", str(tiny_real), "--out", str(out),
                     "--per_source", "2", "--batch_size", "2"]) == 0
    old, _ = model_io.load_weights("mobilenet", start)
    new, manifest = model_io.load_weights("mobilenet", out)
    jax.tree_util.tree_map(np.testing.assert_array_equal, old["params"], new["params"])
    changed = jax.tree_util.tree_leaves(jax.tree_util.tree_map(lambda x, y: bool(np.any(np.asarray(x) != y)),
                                                               old["batch_stats"], new["batch_stats"]))
    assert all(changed)
    assert manifest["batch_stats_from"]["images"] == {"portraits": 2, "selfies": 2, "people": 2, "fullbody": 2,
                                                      "davis": 2}
    assert manifest["input_size"] == [64, 64] and manifest["commands"][0] == "made by the test"
    assert "recompute_batch_stats" in manifest["commands"][-1]


def test_training_batches_come_from_the_recipes_pipeline(tmp_path):
    batches = rbs.training_batches("mobilenet", "tiny", str(tmp_path), (32, 48), 2, seed=0)
    assert len(batches) == 2 and all(w == 1.0 for _, w in batches)
    images = batches[0][0]
    assert images.shape[1:] == (32, 48, 3) and images.dtype == jnp.float32
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0 and float(images.std()) > 0


@pytest.mark.parametrize("args, message", [
    (["--model", "convlstm"], "temporal"),
    (["--data_root", "/nonexistent/data"], "/nonexistent/data does not exist"),
    (["--per_source", "0"], "at least 1"),
    (["--batches", "0"], "at least 1"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny_real, tmp_path, capsys, args, message):
    base = {"--model": "mobilenet", "--weights": "seg_jax/weights/mobilenet", "--data_root": str(tiny_real),
            "--out": str(tmp_path / "out")}
    base.update(dict(zip(args[::2], args[1::2])))
    argv = [x for kv in base.items() for x in kv]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cwd = os.getcwd()
    os.chdir(repo)
    try:
        assert rbs.main(argv) == 2
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err.strip()
    assert err.startswith("seg_jax.convert.recompute_batch_stats: error:") and message in err
    assert "\n" not in err and not (tmp_path / "out").exists()
