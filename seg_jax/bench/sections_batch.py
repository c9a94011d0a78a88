"""Benchmark sections at large batch: inference throughput and training steps.

Each section is ``section(runner) -> rows`` (:class:`seg_jax.bench.run.Runner` holds the options, the caches
and the log).
"""
from __future__ import annotations

import numpy as np

from seg_jax.bench.common import compile_fn, fused_probs_fn, peak_device_memory, probs_fn
from seg_jax.bench.options import FUSED_VARIANTS
from seg_jax.bench.timing import time_calls
from seg_jax.models import get_spec


def throughput(runner) -> list[dict]:
    """Frames/s at a large batch, float32 and bfloat16 compute (per-frame models)."""
    import jax.numpy as jnp

    o, rows = runner.o, []
    h, w = o.sizes[0]
    b = o.throughput_batch
    rng = np.random.default_rng(o.seed)
    frames = jnp.asarray(rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8))
    for name in o.models:
        if get_spec(name).temporal:
            rows.append({"model": name, "skipped": "per-frame throughput: same network as 'mobilenet' plus "
                                                   "the ConvLSTM cells; see its training/latency rows"})
            continue
        if name == "unet" and o.suite == "cpu":
            rows.append({"model": name, "skipped": "U-Net large-batch throughput skipped on CPU (too slow)"})
            continue
        variants = [(f"flax-{d}", d, None) for d in o.throughput_dtypes]
        if name == "mobilenet":
            variants += [(key, None, dot_dtype) for dot_dtype, key in FUSED_VARIANTS.items()]
        for key, dtype_name, dot_dtype in [v for v in variants if runner.want(v[0])]:
            if dtype_name is None:
                folded = runner.folded(name, dot_dtype)
                compiled, ci = compile_fn(fused_probs_fn(jnp.float32), folded, frames)
                params = folded
            else:
                params = runner.variables(name)
                compiled, ci = compile_fn(probs_fn(runner.model(name, dtype_name), name, dtype_name),
                                          params, frames)
            s = time_calls(lambda: compiled(params, frames).block_until_ready(), warmup=2,
                           iters=o.throughput_iters, items=b)
            rows.append({"model": name, "variant": key, "input": [h, w], "batch": b, **ci, **s,
                         "peak_device_memory": peak_device_memory()})
            runner.log(f"thruput {name:9s} b{b} {key:18s} {s['items_per_s']:8.1f} frames/s")
    return rows


def train_models(o) -> tuple[str, ...]:
    """The models a training section times: ``o.train_models``, else ``o.models`` minus the U-Net on CPU."""
    return o.train_models if o.train_models is not None else tuple(
        m for m in o.models if not (m == "unet" and o.suite == "cpu"))


def train(runner) -> list[dict]:
    """Training examples/s at ``train_size``: float32 and mixed precision (bf16 compute, f32 params)."""
    import jax
    import jax.numpy as jnp

    o, rows = runner.o, []
    models = train_models(o)
    if "unet" in o.models and "unet" not in models:
        rows.append({"model": "unet", "skipped": "U-Net training skipped on CPU (31M params: tens of seconds "
                                                 "per step); pass --train-models unet to force"})
    h, w = o.train_size
    b = o.train_batch
    rng = np.random.default_rng(o.seed)
    for name in models:
        for dtype_name in ("float32", "bfloat16"):
            shape = (b, o.clip_length, h, w) if get_spec(name).temporal else (b, h, w)
            batch = {"image": jnp.asarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)),
                     "mask": jnp.asarray((rng.random(shape + (1,)) > 0.5).astype(np.uint8) * 255)}
            model = runner.model(name, dtype_name)
            step, state, impl = _train_step(runner, name, model, dtype_name)
            compiled, ci = compile_fn(step, state, batch, donate_argnums=(0,))
            box = {"state": state}

            def call():
                box["state"], metrics = compiled(box["state"], batch)
                jax.block_until_ready(metrics)
            frames = b * (o.clip_length if get_spec(name).temporal else 1)
            s = time_calls(call, warmup=1, iters=o.train_iters, items=frames)
            rows.append({"model": name, "dtype": dtype_name, "input": [h, w], "batch": b,
                         "frames_per_example": frames // b, "impl": impl, **ci, **s,
                         "examples_per_s": b * 1e3 / s["median_ms"],
                         "peak_device_memory": peak_device_memory()})
            runner.log(f"train   {name:9s} {dtype_name:8s} b{b} {s['items_per_s']:8.1f} frames/s ({impl})")
    return rows


def _train_step(runner, name: str, model, dtype_name: str):
    """The project's jitted train_step (seg_jax.training.steps) when importable, else a local Adam + Dice step."""
    import jax
    import jax.numpy as jnp
    import optax
    variables = jax.tree_util.tree_map(jnp.array, runner.variables(name))  # fresh buffers (donated)
    try:
        from seg_jax.configs.default import get_default_config
        from seg_jax.training import steps
        from seg_jax.training.optimizer import make_optimizer
        config = get_default_config()
        config.model.name = name
        config.model.dtype = dtype_name
        optimizer = make_optimizer(config)
        state = steps.create_train_state(variables, optimizer, jax.random.key(0))
        fn = lambda st, bt: steps.train_step(st, bt, model=model, model_name=name, config=config)  # noqa: E731
        return fn, state, "seg_jax.training.steps.train_step"
    except ImportError:
        pass
    opt = optax.adam(1e-4)

    def step(state, batch):
        params, stats, opt_state = state
        x = batch["image"].astype(jnp.float32) / 255.0
        t = batch["mask"].astype(jnp.float32) / 255.0

        def loss_fn(p):
            out, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
            logits = out[0] if get_spec(name).temporal else out
            prob = jax.nn.sigmoid(logits.astype(jnp.float32))
            inter = jnp.sum(prob * t)
            return 1 - (2 * inter + 1) / (jnp.sum(prob) + jnp.sum(t) + 1), upd["batch_stats"]
        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = opt.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), stats, opt_state), {"loss": loss}
    p = variables["params"]
    return step, (p, variables["batch_stats"], opt.init(p)), "bench-local adam+dice"
