"""Benchmark sections against other tools: each peer alone, and paired rounds against MediaPipe, RVM and MODNet.

Each section is ``section(runner) -> rows`` (:class:`seg_jax.bench.run.Runner` holds the options, the caches
and the log).
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from seg_jax.bench.common import compile_fn, fused_probs_fn, make_frames
from seg_jax.bench.options import FUSED_VARIANTS
from seg_jax.bench.peer_api import ISOLATED_BENCH_PEERS, MEDIAPIPE, PEERS
from seg_jax.inference import streaming
from seg_jax.inference.fused import default_dot_dtype
from seg_jax.peers import mediapipe as mediapipe_tools


def peers(runner) -> dict[str, Any]:
    """Each registered peer of this suite alone (:data:`seg_jax.bench.peer_api.PEERS`)."""
    o, out = runner.o, {}
    for peer in (p for p in PEERS if p.suite == o.suite):
        ok, why = peer.availability(o.peer_install)
        if not ok:
            runner.log(f"[bench] {peer.name} peer skipped: {why}")
            out[peer.name] = {"status": "skipped", "reason": why}
            continue
        res = peer.measure(o, make_frames(peer.frame_sizes(o), o.seed))
        res.setdefault("what", peer.description)
        for r in res.get("results", []) if res.get("status") == "ok" else []:
            runner.log(f"peer    {peer.name} {r.get('model', ''):18s} {r.get('frame', r.get('size', ''))} "
                       f"median {r['median_ms']:6.2f} ms")
        out[peer.name] = res
    return out


def paired(runner) -> list[dict]:
    """seg_jax's default path and each CPU peer timed in alternating blocks on the same frames (CPU suite).

    MediaPipe: network latency at its paired input sizes and end to end on the first frame size; RVM and MODNet
    (ONNX, their own processes, their own input sizes): end to end on the first frame size (alpha at frame size,
    RVM's recurrent state carried from call to call). A peer that cannot be had leaves a ``skipped`` row.

    Each round times ``paired_block`` seg_jax calls, then ``paired_block`` peer calls (the order flips every
    round; each block starts with one untimed call on its side); the ratio is median(seg_jax) /
    median(peer) over all rounds, with the spread of the per-round ratios. A shared machine whose speed
    drifts between sections moves both sides alike here, unlike the ratio of the separate 'latency' and
    'peers' sections. seg_jax runs what ``Segmenter`` runs by default
    (BatchNorm folded, 1x1 products in :func:`seg_jax.inference.fused.default_dot_dtype`).
    """
    import jax.numpy as jnp

    o = runner.o
    if o.suite != "cpu":
        return [{"skipped": "paired rounds are against the CPU peers, on the CPU suite"}]
    if "mobilenet" not in o.models:
        return [{"skipped": "paired rounds use the mobilenet model"}]
    dot = default_dot_dtype()
    variant = FUSED_VARIANTS[dot]
    pairs = []  # (kind, our input or frame, our call, peer model, peer frame)
    net_sizes = [(*p.ours, p.peer_model, p.peer_frame) for p in MEDIAPIPE.pairs]
    frame_sizes = [tuple(f) for f in o.frames[:1]]
    frames = make_frames({(h, w) for h, w, _, _ in net_sizes} | {(144, 256)} | set(frame_sizes), o.seed)
    folded = runner.folded("mobilenet", dot)
    for h, w, peer_model, peer_frame in net_sizes:
        if (h, w) not in {tuple(x) for x in o.sizes}:
            continue
        frame = jnp.asarray(frames[f"{h}x{w}"][None])
        compiled, _ = compile_fn(fused_probs_fn(jnp.float32), folded, frame)
        pairs.append(("latency", [h, w], lambda c=compiled, f=frame: c(folded, f).block_until_ready(),
                      peer_model, peer_frame))
    size = tuple(o.e2e_input)
    step = streaming.StreamingStep(runner.model("mobilenet"), "mobilenet", runner.variables("mobilenet"), size,
                                   streaming.Refine(), fast=True, folded=folded)
    for fh, fw in frame_sizes:
        frame = jnp.asarray(frames[f"{fh}x{fw}"])

        def call(frame=frame):
            step((), frame)[1].block_until_ready()
        for peer_model in (p.peer_model for p in MEDIAPIPE.pairs):
            pairs.append(("end-to-end (alpha at frame size)", [fh, fw], call, peer_model, f"{fh}x{fw}"))
    try:
        session = mediapipe_tools.MediaPipeSession(frames, warmup=o.warmup, install=o.peer_install)
    except RuntimeError as e:
        runner.log(f"[bench] paired rounds vs MediaPipe skipped: {e}")
        rows = [{"skipped": f"MediaPipe peer unavailable: {e}"}]
    else:
        with session:
            rows = _rounds(runner, session, pairs, "mediapipe", variant, dot)
    # the ONNX peers in their own processes: end to end on the same frame (their own input sizes differ from ours)
    for peer in ISOLATED_BENCH_PEERS:
        peer_pairs = [(kind, where, call, peer.model, f"{where[0]}x{where[1]}") for kind, where, call, _, _ in pairs
                      if kind.startswith("end-to-end")][:1]
        if not peer_pairs:
            continue
        try:
            session = peer.peer().session({k: v for k, v in frames.items() if k == peer_pairs[0][4]},
                                          warmup=o.warmup, install=o.peer_install)
        except RuntimeError as e:
            runner.log(f"[bench] paired rounds vs {peer.name} skipped: {e}")
            rows.append({"skipped": f"{peer.name} peer unavailable: {e}"})
            continue
        with session:
            rows += _rounds(runner, session, peer_pairs, peer.name, variant, dot)
    return rows


def _rounds(runner, session, pairs, peer_name: str, variant: str, dot: str) -> list[dict]:
    """Alternating blocks of ``call`` and ``session.time`` per (kind, where, call, peer model, peer frame)."""
    o, rows = runner.o, []
    for kind, where, call, peer_model, peer_frame in pairs:
        for _ in range(o.warmup):
            call()
        ours, theirs, round_ratios = [], [], []
        for r in range(o.paired_rounds):
            block = []
            # one untimed call opens each block on both sides: the first call after the other
            # process ran pays for waking threads and refilling caches
            if r % 2:
                peer_block = session.time(peer_model, peer_frame, o.paired_block + 1)[1:]
            call()
            for _ in range(o.paired_block):
                t0 = time.perf_counter()
                call()
                block.append((time.perf_counter() - t0) * 1e3)
            if not r % 2:
                peer_block = session.time(peer_model, peer_frame, o.paired_block + 1)[1:]
            ours += block
            theirs += peer_block
            round_ratios.append(float(np.median(block) / np.median(peer_block)))
        row = {"kind": kind, "model": "mobilenet", "variant": variant, "dot_dtype": dot,
               ("input" if kind == "latency" else "frame"): where,
               "peer": f"{peer_name} {peer_model}", "peer_frame": peer_frame,
               "rounds": o.paired_rounds, "block": o.paired_block,
               "ours_ms": float(np.median(ours)), "peer_ms": float(np.median(theirs)),
               "ours_p95_ms": float(np.percentile(ours, 95)), "peer_p95_ms": float(np.percentile(theirs, 95)),
               "round_ratio_min": min(round_ratios), "round_ratio_max": max(round_ratios),
               "round_ratio_median": float(np.median(round_ratios))}
        row["ratio"] = row["ours_ms"] / row["peer_ms"]
        rows.append(row)
        size = "x".join(map(str, where))
        runner.log(f"paired  {kind[:10]:10s} {size:9s} {variant} {row['ours_ms']:6.2f} ms vs "
                   f"{peer_model} {row['peer_ms']:5.2f} ms = {row['ratio']:.2f}x (rounds "
                   f"{row['round_ratio_min']:.2f}-{row['round_ratio_max']:.2f})")
    return rows
