"""Benchmark section: the end-to-end streaming step (uint8 frame in, alpha or composite at frame size out).

``e2e(runner) -> rows`` (:class:`seg_jax.bench.run.Runner` holds the options, the caches and the log).
"""
from __future__ import annotations

import dataclasses
import time

import cv2
import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.bench.common import make_frames
from seg_jax.bench.one_jit import one_jit_step
from seg_jax.bench.timing import interleaved
from seg_jax.inference import streaming
from seg_jax.inference.fused import stored_dot_dtype
from seg_jax.ops.composite import AlphaOptions, CompositeOptions, render


@jax.jit
def _composite(frame, alpha, background):
    a = alpha[..., None]
    out = frame.astype(jnp.float32) * a + background.astype(jnp.float32) * (1.0 - a)
    return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)


def _variants(steps: dict, with_decode: bool, runner) -> list[tuple]:
    """(key, step, kind) of every variant the options ask for."""
    variants = []
    for prefix, st in steps.items():
        variants += [(f"{prefix}-alpha", st, "alpha"), (f"{prefix}+composite", st, "composite")]
        if prefix == "fused-bn" or len(steps) == 1:
            if with_decode:
                variants.append((f"{prefix}-alpha+decode", st, "decode"))
            variants.append((f"{prefix}-alpha-onejit", st, "onejit"))
            variants.append((f"{prefix}+blur", st, "blur"))
    return [x for x in variants
            if runner.want(x[0]) and (runner.o.e2e_composite or x[2] not in ("composite", "blur"))]


def _timed_call(st, kind: str, frame, jpeg):
    """A no-argument call that runs one frame of variant ``kind`` to completion, its stream state carried."""
    box = {"state": st.init_state()}
    background = jnp.zeros_like(frame)

    def call():
        if kind == "decode":
            rgb = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
            box["state"], alpha = st(box["state"], np.ascontiguousarray(rgb))
            np.asarray(alpha)
            return
        if kind == "onejit":
            box["state"], alpha = one_jit_step(st, box["state"], frame)
        else:
            box["state"], alpha = st(box["state"], frame)
        if kind == "composite":
            out = _composite(frame, alpha, background)
        elif kind == "blur":
            out = render(frame, alpha, None, None, 0.0, AlphaOptions(), CompositeOptions("blur"))[0]
        else:
            out = alpha
        out.block_until_ready()
    return call


def e2e(runner) -> list[dict]:
    """Frame (H, W, 3) uint8 -> resize -> model -> guided-filter upsample [-> composite] at frame resolution.

    The product path: :class:`seg_jax.inference.streaming.StreamingStep` (separately jitted pieces), with the
    Flax network ('streaming-*', ``fast=False``) and the BatchNorm-folded one ('fused-bn-*', the default).
    Variants: '-alpha' (alpha on device), '+composite' (uint8 composite over a background, one more jit), '+blur'
    (the live tool's default: :func:`seg_jax.ops.composite.render` in mode 'blur', background blurred),
    '+decode' (decode included: a JPEG of the frame, as a webcam's MJPEG stream delivers it, decoded with
    OpenCV, BGR -> RGB, the step, and the alpha copied to a NumPy array), '-onejit' (the whole step as one
    jit, the previous implementation's form, slower on CPU).
    """
    o, rows = runner.o, []
    frames = make_frames(o.frames, o.seed)
    refine = streaming.Refine()
    size = tuple(o.e2e_input)
    for name in o.models:
        if name == "unet" and o.suite == "cpu":
            rows.append({"model": name, "skipped": "U-Net end-to-end skipped on CPU (seconds per frame; "
                                                   "see latency rows)"})
            continue
        v, model = runner.variables(name), runner.model(name)
        steps = {"streaming": streaming.StreamingStep(model, name, v, size, refine, fast=False)}
        fast = streaming.StreamingStep(model, name, v, size, refine, fast=True)
        if fast.fast:
            steps["fused-bn"] = fast
        for (fh, fw) in o.frames:
            frame_np = frames[f"{fh}x{fw}"]
            frame = jnp.asarray(frame_np)
            jpeg = cv2.imencode(".jpg", frame_np[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
            calls, info = {}, {}
            for key, st, kind in _variants(steps, True, runner):
                calls[key] = _timed_call(st, kind, frame, jpeg)
                t0 = time.perf_counter()
                calls[key]()  # compiles every jitted piece for this frame size (excluded from the timing)
                info[key] = {"compile_s": round(time.perf_counter() - t0, 3), "fast": st.fast,
                             "form": "one jit" if kind == "onejit" else "separately jitted pieces",
                             "dot_dtype": str(stored_dot_dtype(st.params)) if st.fast else "float32"}
            for key, s in interleaved(calls, warmup=o.warmup, iters=o.e2e_iters).items():
                rows.append({"model": name, "variant": key, "frame": [fh, fw], "input": list(size),
                             "refine": dataclasses.asdict(refine), **info[key], **s})
                runner.log(f"e2e     {name:9s} {fh}x{fw} {key:24s} median {s['median_ms']:7.2f} ms "
                           f"p95 {s['p95_ms']:7.2f} ({s['items_per_s']:6.1f} fps) load {s['load_avg_after'][:1]}")
    return rows
