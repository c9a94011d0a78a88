"""Benchmark sections on the network alone: batch-1 latency per variant, and the ablation of its parts.

Each section is ``section(runner) -> rows`` (:class:`seg_jax.bench.run.Runner` holds the options, the caches
and the log).
"""
from __future__ import annotations

import numpy as np

from seg_jax.bench.common import compile_fn, fused_probs_fn, make_frames, probs_fn
from seg_jax.bench.one_jit import ablation_apply
from seg_jax.bench.options import FUSED_VARIANTS
from seg_jax.bench.timing import interleaved, time_calls
from seg_jax.models import get_spec


def latency(runner) -> list[dict]:
    """Batch-1 streaming latency at each model input size; uint8 frame in, probabilities out."""
    import jax.numpy as jnp

    o, rows = runner.o, []
    frames = make_frames(o.sizes, o.seed)
    for name in o.models:
        if name == "unet" and o.suite == "cpu" and o.unet_max_seconds <= 0:
            rows.append({"model": name, "skipped": "U-Net latency disabled on CPU (unet_max_seconds=0)"})
            continue
        for (h, w) in o.sizes:
            frame = jnp.asarray(frames[f"{h}x{w}"][None])
            calls, info = {}, {}
            dtypes = ["float32"] + (["bfloat16"] if o.bf16_latency and name != "unet" else [])
            for dtype_name in dtypes:
                if not runner.want(f"flax-{dtype_name}"):
                    continue
                model = runner.model(name, dtype_name)
                fn = probs_fn(model, name, dtype_name)
                v = runner.variables(name)
                if get_spec(name).temporal:
                    state0 = get_spec(name).initial_state(1, h, w)
                    compiled, ci = compile_fn(fn, v, state0, frame, donate_argnums=(1,))
                    box = {"state": get_spec(name).initial_state(1, h, w)}

                    def call(compiled=compiled, v=v, box=box):
                        box["state"], p = compiled(v, box["state"], frame)
                        p.block_until_ready()
                else:
                    compiled, ci = compile_fn(fn, v, frame)

                    def call(compiled=compiled, v=v):
                        compiled(v, frame).block_until_ready()
                key = f"flax-{dtype_name}"
                calls[key], info[key] = call, ci
            for dot_dtype, key in FUSED_VARIANTS.items():
                if name != "mobilenet" or not runner.want(key):
                    continue
                folded = runner.folded(name, dot_dtype)
                compiled, ci = compile_fn(fused_probs_fn(jnp.float32), folded, frame)
                calls[key] = lambda compiled=compiled, folded=folded: compiled(folded, frame).block_until_ready()
                info[key] = ci
            if name == "unet":
                stats = {k: time_calls(c, warmup=1, iters=max(3, o.iters // 20),
                                       max_seconds=o.unet_max_seconds) for k, c in calls.items()}
            else:
                stats = interleaved(calls, warmup=o.warmup, iters=o.iters)
            for key, s in stats.items():
                row = {"model": name, "variant": key, "input": [h, w], "batch": 1, **info[key], **s}
                rows.append(row)
                runner.log(f"latency {name:9s} {h}x{w} {key:18s} median {s['median_ms']:7.2f} ms "
                         f"p95 {s['p95_ms']:7.2f} ({s['items_per_s']:6.1f} fps) compile {info[key]['compile_s']}s "
                         f"load {s['load_avg_after'][:1]}")
    return rows


def ablation(runner) -> list[dict]:
    """Before/after of each kept optimisation, mobilenet batch 1 at the first input size, round-robin.

    Steps: the Flax model -> BatchNorm folded (1x1 as convolution, XLA stem conv, head after the last
    upsample) -> 1x1 convs as dot -> stem conv as shift-and-add -> head before the last upsample (= the
    'fused-bn-float32' path of the other sections) -> 1x1 products with bfloat16 operands and float32
    accumulation ('fused-bn-bf16dot'; the streaming default on CPUs with native bfloat16 dots).
    """
    import jax
    import jax.numpy as jnp

    o = runner.o
    if "mobilenet" not in o.models:
        return [{"skipped": "ablation runs on the mobilenet model only"}]
    h, w = o.sizes[0]
    frame = jnp.asarray(make_frames([(h, w)], o.seed)[f"{h}x{w}"][None])
    v, folded = runner.variables("mobilenet"), runner.folded("mobilenet")
    steps = [("1 flax (BatchNorm at run time)", None),
             ("2 + BN folded", dict(pointwise_as_dot=False, stem_shift_add=False, head_before_upsample=False)),
             ("3 + 1x1 convs as dot", dict(stem_shift_add=False, head_before_upsample=False)),
             ("4 + stem conv shift-and-add", dict(head_before_upsample=False)),
             ("5 + head before last upsample", dict(dot_dtype="float32")),
             ("6 + 1x1 products in bfloat16", dict(dot_dtype="bfloat16"))]
    calls, info, ref = {}, {}, None
    for key, kw in steps:
        if kw is None:
            fn, params = probs_fn(runner.model("mobilenet"), "mobilenet", "float32"), v
        else:
            def fn(p, frames, kw=kw):
                x = frames.astype(jnp.float32) * (1.0 / 255.0)
                return jax.nn.sigmoid(ablation_apply(p, x, **kw)[..., 0])
            params = folded
        compiled, ci = compile_fn(fn, params, frame)
        out = np.asarray(compiled(params, frame))
        ref = out if ref is None else ref
        ci["max_abs_diff_vs_flax"] = float(np.max(np.abs(out - ref)))
        calls[key] = lambda compiled=compiled, params=params: compiled(params, frame).block_until_ready()
        info[key] = ci
    stats = interleaved(calls, warmup=o.warmup, iters=o.iters)
    base = stats[steps[0][0]]["median_ms"]
    rows = []
    prev = None
    for key, _ in steps:
        s = stats[key]
        rows.append({"model": "mobilenet", "step": key, "input": [h, w], "batch": 1, **info[key], **s,
                     "speedup_vs_flax": base / s["median_ms"],
                     "speedup_vs_previous": (prev / s["median_ms"]) if prev else 1.0})
        prev = s["median_ms"]
        runner.log(f"ablation {key:34s} median {s['median_ms']:7.2f} ms cpu {s.get('cpu_median_ms', 0):6.2f} ms "
                 f"x{rows[-1]['speedup_vs_flax']:.2f} vs flax")
    return rows
