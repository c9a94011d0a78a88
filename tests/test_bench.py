"""The benchmark harness, BatchNorm folding and the fast depthwise/upsample layers.

Fast on 2 CPU cores: 64x64 inputs, 2 iterations, one shared harness run (module fixture).
"""
import json
import math
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seg_jax.bench.report import render
from seg_jax.bench.run import Options, Runner, random_variables, ratios, write_json
from seg_jax.inference import fused
from seg_jax.models import layers
from seg_jax.models.build import build_model
from seg_jax.peers import mediapipe as peers

# ---------------------------------------------------------------------------- reference layers (frozen copies)

def reference_depthwise(x, kernel, stride):
    """The shift-and-add depthwise conv as first committed in layers.py (the equivalence reference)."""
    k = kernel.shape[0]
    _, h, w, c = x.shape
    pad_h, pad_w = layers.same_padding(h, k, stride), layers.same_padding(w, k, stride)
    out_h, out_w = -(-h // stride), -(-w // stride)
    xp = jnp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)))
    weights = kernel[:, :, 0, :]
    out = None
    for i in range(k):
        for j in range(k):
            window = jax.lax.slice(xp, (0, i, j, 0), (xp.shape[0], i + (out_h - 1) * stride + 1,
                                                      j + (out_w - 1) * stride + 1, c), (1, stride, stride, 1))
            term = window * weights[i, j]
            out = term if out is None else out + term
    return out


def reference_upsample(x):
    """Half-pixel bilinear 2x upsampling, as jax.image.resize computes it."""
    n, h, w, c = x.shape
    return jax.image.resize(x, (n, 2 * h, 2 * w, c), "bilinear", antialias=False)


@pytest.mark.parametrize("kernel,stride,hw", [(3, 1, (9, 12)), (3, 2, (16, 16)), (5, 2, (15, 10)), (5, 1, (8, 8))])
def test_depthwise_shift_add_equals_grouped_and_reference(kernel, stride, hw):
    rng = np.random.default_rng(kernel * 10 + stride)
    x = jnp.asarray(rng.standard_normal((2, *hw, 8)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((kernel, kernel, 1, 8)), jnp.float32)
    shift = layers.depthwise_conv(x, k, stride, "shift_add")
    grouped = layers.depthwise_conv(x, k, stride, "grouped")
    ref = reference_depthwise(x, k, stride)
    assert shift.shape == grouped.shape == (2, -(-hw[0] // stride), -(-hw[1] // stride), 8)
    np.testing.assert_allclose(shift, grouped, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(shift, ref, atol=1e-5, rtol=1e-5)


def test_depthwise_module_same_params_for_both_impls():
    x = jnp.ones((1, 8, 8, 4))
    trees = [jax.eval_shape(lambda: layers.DepthwiseConv2D(3, 2, impl=impl).init(jax.random.key(0), x))
             for impl in ("shift_add", "grouped")]
    assert jax.tree_util.tree_structure(trees[0]) == jax.tree_util.tree_structure(trees[1])
    assert trees[0]["params"]["kernel"].shape == (3, 3, 1, 4)


def test_upsample_matches_half_pixel_bilinear():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 5, 7, 3)), jnp.float32)
    np.testing.assert_allclose(layers.upsample2x_bilinear(x), reference_upsample(x), atol=1e-5)


def test_stem_conv_shift_add_equals_convolution():
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.random((1, 32, 48, 3)), jnp.float32)
    k = jnp.asarray(rng.standard_normal((3, 3, 3, 16)), jnp.float32)
    np.testing.assert_allclose(fused.stem_conv(x, k, "shift_add"), fused.stem_conv(x, k, "grouped"), atol=1e-5)


# ---------------------------------------------------------------------------- BatchNorm folding

@pytest.fixture(scope="module")
def mobilenet_vars():
    return random_variables("mobilenet", seed=3)


def test_fold_batchnorm_is_exact(mobilenet_vars):
    model = build_model({"name": "mobilenet"})
    x = jnp.asarray(np.random.default_rng(0).random((2, 64, 96, 3)), jnp.float32)
    ref = jax.jit(lambda v, x: model.apply(v, x, train=False))(mobilenet_vars, x)
    folded = fused.folded_to_device(fused.fold_batchnorm(mobilenet_vars))
    out = jax.jit(fused.fused_apply)(folded, x)
    assert out.shape == ref.shape == (2, 64, 96, 1) and out.dtype == jnp.float32
    scale = float(jnp.max(jnp.abs(ref)))
    assert scale > 1e-3  # not a degenerate all-zero comparison
    np.testing.assert_allclose(out, ref, atol=1e-4 * max(1.0, scale), rtol=1e-4)


def test_ablation_with_every_speed_up_off_equals_the_fused_path(mobilenet_vars):
    """The benchmark's ablation variant (1x1 as convolutions, XLA stem, head after the last upsample) walks the
    same plan: same logits as fused_apply."""
    from seg_jax.bench.one_jit import ablation_apply
    x = jnp.asarray(np.random.default_rng(1).random((1, 64, 64, 3)), jnp.float32)
    folded = fused.folded_to_device(fused.fold_batchnorm(mobilenet_vars))
    off = jax.jit(lambda f, x: ablation_apply(f, x, pointwise_as_dot=False, stem_shift_add=False,
                                              head_before_upsample=False))(folded, x)
    np.testing.assert_allclose(off, jax.jit(fused.fused_apply)(folded, x), atol=1e-4, rtol=1e-4)


def test_fold_batchnorm_removes_bn_and_leaves_input_untouched(mobilenet_vars):
    before = jax.tree_util.tree_map(np.array, mobilenet_vars)
    folded = fused.fold_batchnorm(mobilenet_vars)
    assert not any("BatchNorm" in k or k.endswith("_bn") for k in folded)
    assert all(set(v) == {"kernel", "bias"} for v in folded.values())
    assert folded["encoder/expanded_conv_1/expand"]["kernel"].shape == (1, 1, 16, 64)
    jax.tree_util.tree_map(np.testing.assert_array_equal, before, jax.tree_util.tree_map(np.array, mobilenet_vars))
    # the ConvLSTM model shares encoder and decoder names: folding its variables works too, and its four
    # cells' parameters are carried unchanged
    lstm_vars = random_variables("convlstm")
    folded_lstm = fused.fold_batchnorm(lstm_vars)
    cells = {f"decoder/convlstm_{i}" for i in range(4)}
    assert set(folded_lstm) == set(folded) | cells
    for k in cells:
        cell = lstm_vars["params"]["decoder"][k.split("/")[1]]
        assert set(folded_lstm[k]) == set(cell)
        np.testing.assert_array_equal(folded_lstm[k]["kernel"], np.asarray(cell["kernel"]))


# ---------------------------------------------------------------------------- harness

@pytest.fixture(scope="module")
def tiny_result(tmp_path_factory):
    o = Options(suite="cpu", models=("mobilenet",), sizes=((64, 64),), frames=((64, 96),), e2e_input=(64, 64),
                e2e_composite=False, sections=("latency", "e2e", "throughput"), warmup=1, iters=2, e2e_iters=2,
                throughput_batch=2, throughput_iters=2, bf16_latency=False, variants=("fused-bn",))
    res = Runner(o, log=lambda s: None).run()
    path = write_json(res, tmp_path_factory.mktemp("bench") / "bench-tiny.json")
    return json.loads(path.read_text())


def test_harness_writes_well_formed_json(tiny_result):
    r = tiny_result
    assert r["schema"] == "seg_jax.bench/1" and r["suite"] == "cpu"
    hw = r["hardware"]
    for key in ("cpu_model", "cpu_count", "jax", "backend", "load_avg"):
        assert key in hw
    lat = r["latency"]
    assert {row["variant"] for row in lat} == {"fused-bn-float32", "fused-bn-bf16dot"}
    for row in lat + r["e2e"] + r["throughput"]:
        assert row["iters"] == 2
        for key in ("median_ms", "p95_ms", "items_per_s", "compile_s"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row)
        assert row["p95_ms"] >= row["median_ms"]
    e2e_variants = {row["variant"] for row in r["e2e"]}
    assert {"fused-bn-alpha", "fused-bn-alpha-onejit"} <= e2e_variants
    assert e2e_variants <= {"fused-bn-alpha", "fused-bn-alpha-onejit", "fused-bn-alpha+decode"}
    assert all(row["fast"] for row in r["e2e"])
    from seg_jax.inference.fused import default_dot_dtype
    assert {row["dot_dtype"] for row in r["e2e"]} == {default_dot_dtype()}  # the streaming default
    assert r["throughput"][0]["batch"] == 2
    assert "train" not in r and "peers" not in r


def test_ratios_and_report_with_a_peer(tiny_result):
    res = dict(tiny_result)
    res["latency"] = [dict(row, input=[256, 256]) for row in res["latency"]]
    res["peers"] = {"mediapipe": {"status": "ok", "version": "0.10.21", "what": "test", "results": [
        {"model": "general_256x256", "frame": "256x256", "median_ms": 5.0, "p95_ms": 6.0, "items_per_s": 200.0}]}}
    out = ratios(res)
    assert len(out) == 1 and out[0]["peer"] == "mediapipe general_256x256"
    best = min(row["median_ms"] for row in res["latency"])
    assert out[0]["ratio"] == pytest.approx(best / 5.0)
    res["ratios"] = out
    md = render(res, "tiny")
    assert "seg_jax vs peers" in md and "| latency | mobilenet |" in md and "MediaPipe 0.10.21" in md


def test_mediapipe_peer_skips_with_a_reason(tmp_path):
    res = peers.run_mediapipe({"8x8": np.zeros((8, 8, 3), np.uint8)}, warmup=0, iters=1,
                              venv=tmp_path / "no-venv", install=False)
    assert res["status"] == "skipped" and "no-venv" in res["reason"]


FAKE_PEER = """
import json, sys, time
print("some library banner")
print(json.dumps({"ready": True, "mediapipe_version": "fake"}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    if req["model"] not in ("general_256x256", "landscape_144x256"):
        print(json.dumps({"error": "unknown model " + req["model"]}), flush=True)
        continue
    ms = 2.0 if req["model"] == "general_256x256" else 1.0
    print(json.dumps({"times_ms": [ms] * req["iters"]}), flush=True)
"""


def test_mediapipe_session_protocol_and_errors(tmp_path):
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    frames = {"8x8": np.zeros((8, 8, 3), np.uint8)}
    with peers.MediaPipeSession(frames, warmup=0, python=Path(sys.executable), script=script) as s:
        assert s.info["mediapipe_version"] == "fake"
        assert s.time("general_256x256", "8x8", 3) == [2.0, 2.0, 2.0]
        with pytest.raises(RuntimeError, match="unknown model nope"):
            s.time("nope", "8x8", 1)
    dead = tmp_path / "dead_peer.py"
    dead.write_text("import sys; sys.stderr.write('no mediapipe here'); sys.exit(3)")
    with pytest.raises(RuntimeError, match=r"exited \(rc 3\): no mediapipe here"):
        peers.MediaPipeSession(frames, warmup=0, python=Path(sys.executable), script=dead)


def test_paired_rounds_alternate_and_lead_the_ratios(tmp_path, monkeypatch):
    script = tmp_path / "fake_peer.py"
    script.write_text(FAKE_PEER)
    real_session = peers.MediaPipeSession
    monkeypatch.setattr(peers, "MediaPipeSession", lambda frames, **kw: real_session(
        frames, warmup=0, python=Path(sys.executable), script=script))
    from seg_jax.bench import sections_peers
    monkeypatch.setattr(sections_peers, "ISOLATED_BENCH_PEERS", ())   # RVM/MODNet: tests/test_isolated_peers.py
    o = Options(suite="cpu", models=("mobilenet",), sizes=((64, 64),), frames=((64, 96),), e2e_input=(64, 64),
                sections=("paired",), warmup=1, paired_rounds=3, paired_block=2)
    res = Runner(o, log=lambda s: None).run()
    rows = res["paired"]
    assert isinstance(rows, list) and all("ratio" in r for r in rows), rows
    # 64x64 is not one of MediaPipe's pairings: only the end-to-end rows, against both peer models
    assert [r["peer"] for r in rows] == ["mediapipe general_256x256", "mediapipe landscape_144x256"]
    for r in rows:
        assert r["rounds"] == 3 and r["block"] == 2 and r["frame"] == [64, 96]
        assert r["ratio"] == pytest.approx(r["ours_ms"] / r["peer_ms"]) and r["ours_ms"] > 0
        assert r["round_ratio_min"] <= r["round_ratio_median"] <= r["round_ratio_max"]
    assert rows[0]["peer_ms"] == 2.0 and rows[1]["peer_ms"] == 1.0
    assert res["ratios"][0]["kind"] == "end-to-end (alpha at frame size), paired rounds"


def test_peers_section_asks_each_registered_peer(monkeypatch):
    """The peers section runs every peer of the suite through the peer interface; one that cannot run here is
    reported with its reason, one that can is measured on the frames it asked for."""
    from seg_jax.bench import sections_peers

    class Absent:
        name, suite, description, pairs = "absent", "cpu", "a peer not installed", ()

        def availability(self, install):
            return False, "not installed here"

    class Present:
        name, suite, description, pairs = "present", "cpu", "a fake peer", ()
        seen = []

        def availability(self, install):
            return True, "always"

        def frame_sizes(self, options):
            return [(8, 12)]

        def measure(self, options, frames):
            self.seen.append(sorted(frames))
            return {"status": "ok", "results": [{"model": "m", "frame": "8x12", "median_ms": 1.5}]}

    class OtherSuite(Present):
        name, suite = "gpu-only", "gpu"

    monkeypatch.setattr(sections_peers, "PEERS", (Absent(), Present(), OtherSuite()))
    res = Runner(Options(suite="cpu", sections=("peers",)), log=lambda s: None).run()
    assert res["peers"]["absent"] == {"status": "skipped", "reason": "not installed here"}
    assert res["peers"]["present"]["results"][0]["median_ms"] == 1.5
    assert res["peers"]["present"]["what"] == "a fake peer"
    assert "gpu-only" not in res["peers"] and Present.seen == [["8x12"]]


def test_ablation_section_steps_agree_with_flax():
    """The ablation section builds every variant (Flax, folded, bfloat16 products...) and each one's output
    stays close to the Flax model's."""
    o = Options(suite="cpu", models=("mobilenet",), sizes=((64, 64),), sections=("ablation",), warmup=1, iters=2)
    rows = Runner(o, log=lambda s: None).run()["ablation"]
    assert isinstance(rows, list) and len(rows) >= 2, rows
    assert all(r["median_ms"] > 0 for r in rows)
    assert all(r.get("max_abs_diff_vs_flax", 0.0) < 0.1 for r in rows)


def test_datapath_section_times_the_device_data_path_the_step_and_both():
    o = Options(suite="cpu", models=("mobilenet",), sections=("datapath",), train_size=(32, 32), train_batch=2,
                train_iters=2)
    rows = Runner(o, log=lambda s: None).run()["datapath"]
    assert isinstance(rows, list) and len(rows) == 1, rows
    row = rows[0]
    assert row["model"] == "mobilenet" and row["impl"] == "seg_jax.training.steps.train_step" and row["batch"] == 2
    for key in ("data_examples_per_s", "step_examples_per_s", "examples_per_s", "data_over_step"):
        assert math.isfinite(row[key]) and row[key] > 0, (key, row)
    # one loop iteration does both jobs, so it cannot beat the step alone by much (timing noise aside)
    assert row["examples_per_s"] < 1.5 * row["step_examples_per_s"]
    assert "meets_bar" not in row                 # the bar is for 256x256
