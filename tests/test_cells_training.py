"""The cached-feature path of the cells-only recipe (seg_jax.training.cells) against the full model 3."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from seg_jax.inference.segmenter import random_variables
from seg_jax.models.build import build_model
from seg_jax.training import cells

H, W, T = 64, 96, 4


@pytest.fixture(scope="module")
def variables():
    v = random_variables("convlstm", seed=3, bn_jitter=True)
    # Small cell weights keep the gates off their hard-sigmoid clamps, so every path is exercised.
    flat = traverse_util.flatten_dict(v["params"])
    flat = {k: (x * 0.3 if k[1].startswith("convlstm_") else x) for k, x in flat.items()}
    return {**v, "params": traverse_util.unflatten_dict(flat)}


@pytest.fixture(scope="module")
def clip():
    return jnp.asarray(np.random.default_rng(0).uniform(0, 1, (1, T, H, W, 3)), jnp.float32)


def _full(variables, clip, residual):
    model = build_model({"name": "convlstm", "residual_cells": residual})
    logits, state = model.apply(variables, clip, train=False)
    return logits, state


def _cached(variables, clip, residual, chunks=(T,), resets=None, active=(0, 1, 2, 3)):
    feats = cells.frozen_inputs(variables, clip[0])
    feats = cells.CellInputs(*(f[None] for f in feats))
    tail = cells.DecoderTail(cells=active, residual_cells=residual)
    dec = {"params": variables["params"]["decoder"], "batch_stats": variables["batch_stats"]["decoder"]}
    state = cells.zero_state(1, H, W)
    resets = jnp.zeros((1, T), bool) if resets is None else resets
    out, start = [], 0
    for k in chunks:
        part = cells.CellInputs(*(f[:, start:start + k] for f in feats))
        state, logits = cells.stream_chunk(tail, dec, state, part, resets[:, start:start + k])
        out.append(logits)
        start += k
    return jnp.concatenate(out, axis=1), state


@pytest.mark.parametrize("residual", [True, False])
def test_cached_features_equal_the_full_model(variables, clip, residual):
    want, want_state = _full(variables, clip, residual)
    got, got_state = _cached(variables, clip, residual)
    assert float(jnp.std(want)) > 1e-4            # not a constant map
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-4, rtol=1e-4)
    for a, b in zip(jax.tree_util.tree_leaves(got_state), jax.tree_util.tree_leaves(want_state)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-4, rtol=1e-4)


def test_state_carried_across_chunks_equals_one_scan(variables, clip):
    one, _ = _cached(variables, clip, True, chunks=(T,))
    three, _ = _cached(variables, clip, True, chunks=(1, 2, 1))
    np.testing.assert_allclose(np.asarray(three), np.asarray(one), atol=1e-5)


def test_reset_starts_a_clip_afresh(variables, clip):
    resets = jnp.zeros((1, T), bool).at[0, 2].set(True)
    got, _ = _cached(variables, clip, True, resets=resets)
    fresh, _ = _full(variables, clip[:, 2:], True)
    carried, _ = _full(variables, clip, True)
    np.testing.assert_allclose(np.asarray(got[:, 2:]), np.asarray(fresh), atol=2e-4, rtol=1e-4)
    assert float(jnp.max(jnp.abs(carried[:, 2:] - fresh))) > 1e-3   # the reset matters on this clip


def test_skipping_zero_cells_is_the_same_model(variables, clip):
    from seg_jax.convert.convlstm_warm_start import zero_cells
    zeroed = zero_cells(variables)
    flat = traverse_util.flatten_dict(zeroed["params"])
    for level in (0, 1):
        for name in ("kernel", "recurrent_kernel", "bias"):
            k = ("decoder", f"convlstm_{level}", name)
            flat[k] = traverse_util.flatten_dict(variables["params"])[k]
    mixed = {**zeroed, "params": traverse_util.unflatten_dict(flat)}
    want, _ = _full(mixed, clip, True)
    got, _ = _cached(mixed, clip, True, active=(0, 1))
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-4, rtol=1e-4)
    cells.check_skipped_cells_zero(mixed["params"], (0, 1))
    with pytest.raises(ValueError, match="convlstm_2 has non-zero parameters"):
        cells.check_skipped_cells_zero(variables["params"], (0, 1))


def test_steady_change_loss_counts_only_steady_truth_within_a_clip():
    logits = jnp.zeros((1, 3, 2, 2, 1)).at[0, 1].set(5.0)           # frame 1 jumps up, frame 2 back
    targets = jnp.zeros((1, 3, 2, 2, 1)).at[0, 1, 0, 0].set(1.0)     # one pixel's truth moves on frames 0-1-2
    none_reset = jnp.zeros((1, 3), bool)
    value = float(cells.steady_change_loss(logits, targets, none_reset))
    jump = float(jax.nn.sigmoid(5.0) - 0.5) ** 2
    np.testing.assert_allclose(value, jump, rtol=1e-5)                 # 6 steady pixel-pairs, all jump
    assert float(cells.steady_change_loss(logits, targets, none_reset.at[0, 1].set(True).at[0, 2].set(True))) == 0.0


def test_cache_part_is_rebuilt_when_its_split_or_weights_change(tmp_path, variables, capsys):
    """A cached part made from another clip list (a split widened) or other weights is never reused."""
    from seg_jax.training import cell_cache

    frames = np.random.default_rng(1).integers(0, 255, (2, 40, 60, 3), np.uint8)
    masks = np.zeros((2, 40, 60, 1), np.uint8)
    masks[:, 10:30, 20:40] = 255
    folder = str(tmp_path / "part")
    size = (32, 64)

    def build(names, sha):
        clips = [(n, frames, masks) for n in names]
        return cell_cache.build_part(folder, variables, clips, 2 * len(names), size,
                                     {"davis": "train", "weights": sha, "clips": list(names)})

    build(["a", "b"], "sha1")
    assert [c["name"] for c in cell_cache.CachePart(folder).clips] == ["a", "b"]
    assert cell_cache.part_staleness(folder, size, {"davis": "train", "weights": "sha1", "clips": ["a", "b"]}) is None
    build(["a", "b"], "sha1")                                       # same source: kept, nothing printed
    assert "stale" not in capsys.readouterr().out
    build(["a"], "sha1")                                            # clip b moved to val
    assert "stale (made from a different clips)" in capsys.readouterr().out
    part = cell_cache.CachePart(folder)
    assert [c["name"] for c in part.clips] == ["a"] and part.arrays["mask"].shape[0] == 2
    build(["a"], "sha2")                                            # other frozen weights
    assert "made from a different weights" in capsys.readouterr().out
    assert "made at" in cell_cache.part_staleness(folder, (64, 64), {"davis": "train", "weights": "sha2",
                                                                     "clips": ["a"]})


def test_cells_run_keeps_the_best_val_cells_and_resumes_after_its_time_budget(tmp_path, variables):
    """cells_loop.train on two tiny cache parts: a run stopped by max_train_seconds checkpoints and says so, the
    same call resumes it, val is scored at 0 and every eval_every steps, and the returned cells are the best
    evaluation's (selection_key), checkpointed in best_cells.msgpack."""
    import json

    import ml_collections

    from seg_jax.convert.convlstm_warm_start import zero_cells
    from seg_jax.training import cell_cache, cells_loop

    rng = np.random.default_rng(2)
    size = (32, 64)
    start_vars = zero_cells(variables)

    def part(name):
        frames = rng.integers(0, 255, (6, 32, 64, 3), np.uint8)
        masks = np.zeros((6, 32, 64, 1), np.uint8)
        masks[:, 8:24, 16:40] = 255
        folder = str(tmp_path / name)
        cell_cache.build_part(folder, start_vars, [(f"{name}-a", frames[:3], masks[:3]),
                                                   (f"{name}-b", frames[3:], masks[3:])], 6, size, {"n": name})
        return cell_cache.CachePart(folder)

    train_part, val_part = part("train"), part("val")
    config = ml_collections.ConfigDict(dict(
        seed=0, cells=(0, 1), gate_activation="hard_sigmoid", reverse=0.5, skip=0.0, lanes=2, chunk=2,
        num_steps=4, learning_rate=1e-2, warmup_steps=1, final_lr_fraction=0.1, clip_norm=1.0, loss="bce_dice",
        steady_weight=0.0, log_every=1, eval_every=2, checkpoint_every=10, max_train_seconds=1e-9))
    workdir = str(tmp_path / "run")
    os.makedirs(workdir)
    logs = []
    out = cells_loop.train(config, workdir, start_vars, [train_part], [1.0], val_part, log=logs.append)
    assert out["finished"] is False and any("time budget" in m for m in logs)
    assert os.path.isfile(os.path.join(workdir, "cells.msgpack"))
    config.max_train_seconds = 0.0
    out = cells_loop.train(config, workdir, start_vars, [train_part], [1.0], val_part, log=logs.append)
    assert out["finished"] and any(m.startswith("resumed at step 1") for m in logs)
    with open(os.path.join(workdir, "history.jsonl")) as f:
        evaluations = [json.loads(line) for line in f if '"val"' in line]
    assert [e["step"] for e in evaluations] == [0, 2, 4]
    start = evaluations[0]["val"]
    want = max(evaluations, key=lambda e: cells_loop.selection_key(e["val"], start))
    assert out["best"]["step"] == want["step"]
    _, best_cells, _ = cells_loop.load_checkpoint(os.path.join(workdir, "best_cells.msgpack"), out["cells"], None)
    for a, b in zip(jax.tree_util.tree_leaves(best_cells), jax.tree_util.tree_leaves(out["cells"])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    trained = any(float(jnp.max(jnp.abs(x))) > 0 for x in jax.tree_util.tree_leaves(out["cells"]))
    assert trained == (want["step"] != 0)          # step 0's best cells are the zero cells of the start


def test_selection_prefers_steadiness_then_dice():
    from seg_jax.training.cells_loop import selection_key

    start = {"dice": 0.50, "steady_change": 0.020}
    steadier = {"dice": 0.49, "steady_change": 0.019}
    sharper_but_flickery = {"dice": 0.60, "steady_change": 0.030}
    assert selection_key(steadier, start) > selection_key(sharper_but_flickery, start)
    assert selection_key({"dice": 0.52, "steady_change": 0.020}, start) > selection_key(start, start)
