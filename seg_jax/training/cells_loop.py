"""The cells-only recipe's run: cache the frozen features, stream clips through the cells with the state carried
between chunks, write a model-3 weights folder.

``B`` streams (lanes) each play clips back to back; a step takes the next ``K`` frames of every lane, so a lane's
state runs on through a whole clip (tens of frames) and is zeroed only where the next clip starts. Each clip is drawn
from the cache parts by weight, played forwards or backwards and at frame stride 1 or 2 (real motion, reversed or
faster, at no extra feature cost).

    python -m research.train_cells --config configs/convlstm_cells.py --workdir workdirs/convlstm_cells

The run is resumable by the same command (the cells and the optimizer are saved every ``checkpoint_every`` steps
and when ``max_train_seconds`` is up; the lanes restart from clip starts). The val clips are streamed every
``eval_every`` steps; the best cells (:func:`selection_key`: highest val Dice among the evaluations no less steady
than the start, the zero cells of the per-frame model) are kept in ``best_cells.msgpack``. ``config`` fields:
:mod:`configs.convlstm_cells`.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization

from seg_jax.common.writer import write_bytes
from seg_jax.training import cell_cache, cells


class StreamSampler:
    """Index plan for ``lanes`` streams: ``next(K)`` -> (part index per lane (B,), rows (B, K), resets (B, K)).

    A lane's frames all come from one part within a clip; at a clip's end the lane draws the next clip (part by
    ``weights``, clip uniformly, reversed with probability ``reverse``, stride 2 with probability ``skip``) and
    marks its first frame as a reset. All lanes of one step use the same part (one gather per step), drawn once
    per chunk boundary at which every lane starts a clip; otherwise a lane continues in its part.
    """

    def __init__(self, parts: list[cell_cache.CachePart], weights: list[float], lanes: int, seed: int = 0,
                 reverse: float = 0.5, skip: float = 0.3):
        self.parts, self.lanes = parts, int(lanes)
        w = np.asarray(weights, np.float64)
        self.weights = w / w.sum()
        self.rng = np.random.default_rng(seed)
        self.reverse, self.skip = float(reverse), float(skip)
        self.queues: list[list[tuple[int, int, bool]]] = [[] for _ in range(self.lanes)]

    def _draw_clip(self) -> list[tuple[int, int, bool]]:
        p = int(self.rng.choice(len(self.parts), p=self.weights))
        clip = self.parts[p].clips[int(self.rng.integers(len(self.parts[p].clips)))]
        rows = np.arange(clip["start"], clip["start"] + clip["length"])
        if self.rng.random() < self.skip and len(rows) >= 8:
            rows = rows[int(self.rng.integers(2))::2]
        if self.rng.random() < self.reverse:
            rows = rows[::-1]
        return [(p, int(r), i == 0) for i, r in enumerate(rows)]

    def next(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        part = np.zeros((self.lanes, k), np.int32)
        rows = np.zeros((self.lanes, k), np.int64)
        resets = np.zeros((self.lanes, k), bool)
        for lane, queue in enumerate(self.queues):
            for t in range(k):
                if not queue:
                    queue.extend(self._draw_clip())
                part[lane, t], rows[lane, t], resets[lane, t] = queue.pop(0)
        return part, rows, resets

    def gather(self, part: np.ndarray, rows: np.ndarray) -> tuple[cells.CellInputs, np.ndarray]:
        """(CellInputs float16 (B, K, ...), masks float32 (B, K, h, w, 1) in [0, 1]) for a plan."""
        b, k = rows.shape
        feats = [[None] * k for _ in range(b)]
        masks = np.zeros((b, k, *self.parts[0].size, 1), np.float32)
        for i in range(b):
            for t in range(k):
                p = self.parts[part[i, t]]
                feats[i][t] = p.inputs(np.asarray([rows[i, t]]))
                masks[i, t, ..., 0] = p.masks(np.asarray([rows[i, t]]))[0] / 255.0
        stacked = cells.CellInputs(*(np.stack([np.concatenate([feats[i][t][j] for t in range(k)])
                                               for i in range(b)]) for j in range(3)))
        return stacked, masks


def make_step(tail: cells.DecoderTail, optimizer: optax.GradientTransformation, loss: str, steady_weight: float):
    """jit((trainable, opt_state, frozen, state, inputs, targets, resets) -> (trainable, opt_state, state, loss))."""
    def step(trainable, opt_state, frozen, state, inputs, targets, resets):
        inputs = cells.CellInputs(*(jnp.asarray(a, jnp.float32) for a in inputs))
        (value, (state, _)), grads = jax.value_and_grad(cells.chunk_loss, has_aux=True)(
            trainable, frozen, tail, state, inputs, targets, resets, loss=loss, steady_weight=steady_weight)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, jax.lax.stop_gradient(state), value
    return jax.jit(step, donate_argnums=(0, 1, 3))


def make_stream(tail: cells.DecoderTail):
    """jit((variables, state, inputs (1, K, ...), resets (1, K)) -> (state, probabilities (1, K, h, w)))."""
    def stream(variables, state, inputs, resets):
        inputs = cells.CellInputs(*(jnp.asarray(a, jnp.float32) for a in inputs))
        state, logits = cells.stream_chunk(tail, variables, state, inputs, resets)
        return state, jax.nn.sigmoid(logits[..., 0])
    return jax.jit(stream)


def stream_scores(stream, variables, part: cell_cache.CachePart, chunk: int = 8) -> dict[str, float]:
    """Every clip of ``part`` streamed from a reset at the network's size: pooled Dice over all frames and the
    mean absolute frame-to-frame change of the probability where the truth is steady (a flicker proxy)."""
    inter = total = flick = steady_n = 0.0
    h, w = part.size
    for clip in part.clips:
        state = cells.zero_state(1, h, w)
        previous, previous_mask = None, None
        for s in range(clip["start"], clip["start"] + clip["length"], chunk):
            rows = np.arange(s, min(s + chunk, clip["start"] + clip["length"]))
            resets = np.zeros((1, len(rows)), bool)
            resets[0, 0] = s == clip["start"]
            state, probs = stream(variables, state, cells.CellInputs(*(a[None] for a in part.inputs(rows))),
                                  jnp.asarray(resets))
            probs = np.asarray(probs[0])
            masks = part.masks(rows).astype(np.float32) / 255.0
            inter += float(np.sum(probs * masks))
            total += float(np.sum(probs) + np.sum(masks))
            for p, m in zip(probs, masks):
                if previous is not None:
                    steady = np.abs(m - previous_mask) < 0.05
                    flick += float(np.sum(np.abs(p - previous) * steady))
                    steady_n += float(np.sum(steady))
                previous, previous_mask = p, m
    return {"dice": 2 * inter / max(total, 1e-9), "steady_change": flick / max(steady_n, 1.0)}


def selection_key(scores: Mapping[str, float], start: Mapping[str, float]) -> tuple[int, float]:
    """Orders val evaluations, larger is better: those whose steady change is at most the start's (the per-frame
    model's: the cells must not add flicker) come first, then higher Dice."""
    return (int(scores["steady_change"] <= start["steady_change"]), float(scores["dice"]))


def save_checkpoint(path: str, step: int, trainable: Any, opt_state: Any) -> None:
    payload = serialization.msgpack_serialize({"step": step, "cells": serialization.to_state_dict(
        jax.device_get(trainable)), "opt_state": serialization.to_state_dict(jax.device_get(opt_state))})
    write_bytes(path, payload, option="--workdir")


def load_checkpoint(path: str, trainable: Any, opt_state: Any) -> tuple[int, Any, Any]:
    with open(path, "rb") as f:
        raw = serialization.msgpack_restore(f.read())
    return (int(raw["step"]), serialization.from_state_dict(trainable, raw["cells"]),
            serialization.from_state_dict(opt_state, raw["opt_state"]))


def train(config: Mapping[str, Any], workdir: str, variables: Mapping[str, Any],
          train_parts: list[cell_cache.CachePart], weights: list[float], val_part: cell_cache.CachePart,
          log=print) -> dict:
    """Train the cells ``config.cells`` of model-3 ``variables`` (the others must be zero) for ``config.num_steps``
    steps; returns the run record (val scores over the steps, seconds). Checkpoints: ``workdir/cells.msgpack``."""
    active = tuple(int(c) for c in config.cells)
    cells.check_skipped_cells_zero(variables["params"], active)
    tail = cells.DecoderTail(cells=active, residual_cells=True, gate_activation=config.gate_activation)
    trainable, other = cells.split_cells(variables["params"], active)
    frozen = {"params": other, "batch_stats": variables["batch_stats"]["decoder"]}
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup_steps,
                                                  max(config.num_steps, config.warmup_steps + 1),
                                                  config.learning_rate * config.final_lr_fraction)
    optimizer = optax.chain(optax.clip_by_global_norm(config.clip_norm), optax.adam(schedule))
    opt_state = optimizer.init(trainable)
    ckpt = os.path.join(workdir, "cells.msgpack")
    start = 0
    if os.path.isfile(ckpt):
        start, trainable, opt_state = load_checkpoint(ckpt, trainable, opt_state)
        log(f"resumed at step {start} from {ckpt}")
    step_fn = make_step(tail, optimizer, config.loss, float(config.steady_weight))
    stream = make_stream(tail)
    h, w = train_parts[0].size
    sampler = StreamSampler(train_parts, weights, config.lanes, seed=int(config.seed) + start,
                            reverse=config.reverse, skip=config.skip)
    state = cells.zero_state(config.lanes, h, w)
    history_path = os.path.join(workdir, "history.jsonl")

    best_path = os.path.join(workdir, "best_cells.msgpack")
    rows = [json.loads(line) for line in _lines(history_path)]
    evaluations = [r["val"] | {"step": r["step"]} for r in rows if "val" in r]   # earlier sessions' (resume)

    def evaluate(step):
        v = {"params": {**other, **trainable}, "batch_stats": frozen["batch_stats"]}
        scores = stream_scores(stream, v, val_part)
        with open(history_path, "a") as f:
            f.write(json.dumps({"step": step, "val": scores}) + "\n")
        best = not evaluations or selection_key(scores, evaluations[0]) > max(
            selection_key(e, evaluations[0]) for e in evaluations)
        evaluations.append(scores | {"step": step})
        if best:
            save_checkpoint(best_path, step, trainable, opt_state)
        log(f"step {step}: val clips dice {scores['dice']:.4f} steady change {scores['steady_change']:.5f}"
            + (" (best)" if best else ""))
        return scores

    if start == 0:
        evaluate(0)
    t0, losses = time.perf_counter(), []
    budget = float(config.get("max_train_seconds", 0) or 0)
    for step in range(start + 1, config.num_steps + 1):
        part, rows, resets = sampler.next(config.chunk)
        inputs, targets = sampler.gather(part, rows)
        trainable, opt_state, state, value = step_fn(trainable, opt_state, frozen, state, inputs,
                                                     jnp.asarray(targets), jnp.asarray(resets))
        losses.append(float(value))
        if step % config.log_every == 0:
            rate = (time.perf_counter() - t0) / len(losses)
            log(f"step {step}: loss {np.mean(losses[-config.log_every:]):.4f} ({rate:.2f} s/step)")
            with open(history_path, "a") as f:
                f.write(json.dumps({"step": step, "loss": float(np.mean(losses[-config.log_every:])),
                                    "seconds_per_step": rate}) + "\n")
        if step % config.checkpoint_every == 0 or step == config.num_steps:
            save_checkpoint(ckpt, step, trainable, opt_state)
        if step % config.eval_every == 0 or step == config.num_steps:
            evaluate(step)
        if budget and time.perf_counter() - t0 > budget and step < config.num_steps:
            save_checkpoint(ckpt, step, trainable, opt_state)
            log(f"time budget of {budget:.0f} s used at step {step}; the same command resumes the run")
            return {"cells": trainable, "other": other, "finished": False}
    if config.get("export", "best") == "best" and os.path.isfile(best_path):
        _, trainable, _ = load_checkpoint(best_path, trainable, opt_state)
    best = max(evaluations, key=lambda e: selection_key(e, evaluations[0]))
    log(f"best val evaluation: step {best['step']} (dice {best['dice']:.4f}, steady change "
        f"{best['steady_change']:.5f}; start {evaluations[0]['dice']:.4f} / {evaluations[0]['steady_change']:.5f})")
    return {"cells": trainable, "other": other, "finished": True, "best": best, "start": evaluations[0]}


def _lines(path: str) -> list[str]:
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        return [line for line in f if line.strip()]


def assemble(variables: Mapping[str, Any], trainable: Mapping[str, Any]) -> dict:
    """Model-3 ``variables`` with the trained cells put in."""
    params = dict(variables["params"])
    params["decoder"] = {**params["decoder"], **jax.device_get(trainable)}
    return {**variables, "params": params}


__all__ = ["StreamSampler", "make_step", "make_stream", "stream_scores", "selection_key", "train", "assemble",
           "save_checkpoint", "load_checkpoint"]
