"""What the benchmark's sections share: variables, frames, explicit compilation, the timed functions."""
from __future__ import annotations

import time
from typing import Any, Callable, Optional

import numpy as np

from seg_jax.artifacts.model_io import load_weights
from seg_jax.artifacts.weights_folder import shipped_weights_dir
from seg_jax.inference.fused import fused_apply
from seg_jax.inference.segmenter import random_variables as segmenter_random_variables
from seg_jax.models import get_spec

# ----------------------------------------------------------------------------------------------- variables

def random_variables(model_name: str, seed: int = 0) -> dict:
    """Well-scaled untrained variables (speed does not depend on values), with non-identity BatchNorm so that
    BN folding is really exercised: ``seg_jax.inference.segmenter.random_variables(..., bn_jitter=True)``."""
    return segmenter_random_variables(model_name, seed, bn_jitter=True)


def model_variables(model_name: str, seed: int = 0) -> tuple[dict, str]:
    """Shipped weights when ``seg_jax/weights/<model>/`` exists, else random ones (same speed)."""
    if shipped_weights_dir(model_name).exists():
        try:
            variables, _ = load_weights(model_name)
            return dict(variables), f"shipped weights {shipped_weights_dir(model_name)}"
        except Exception as e:  # noqa: BLE001 - fall back, and say why
            return random_variables(model_name, seed), f"random (shipped weights failed to load: {e})"
    return random_variables(model_name, seed), "random (no shipped weights; speed does not depend on values)"


def make_frames(sizes, seed: int = 0) -> dict[str, np.ndarray]:
    """Deterministic RGB uint8 frames (smooth colour fields + noise), keyed 'HxW'."""
    rng = np.random.default_rng(seed)
    out = {}
    for h, w in sizes:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([128 + 100 * np.sin(xx / 37.0), 128 + 100 * np.cos(yy / 23.0),
                         128 + 60 * np.sin((xx + yy) / 51.0)], -1)
        out[f"{h}x{w}"] = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------------------------- compile

def compile_fn(fn: Callable, *args, donate_argnums=()) -> tuple[Callable, dict[str, Any]]:
    """jit + lower + compile explicitly; returns (compiled, {lower_s, compile_s, memory})."""
    import jax
    t0 = time.perf_counter()
    lowered = jax.jit(fn, donate_argnums=donate_argnums).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    info: dict[str, Any] = {"lower_s": round(t1 - t0, 3), "compile_s": round(t2 - t1, 3)}
    try:
        m = compiled.memory_analysis()
        if m is not None:
            info["memory"] = {k: int(getattr(m, k)) for k in (
                "argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes",
                "generated_code_size_in_bytes") if hasattr(m, k)}
    except Exception:  # noqa: BLE001 - not every backend reports it
        pass
    return compiled, info


def peak_device_memory() -> Optional[dict[str, int]]:
    """The backend's peak-bytes counter where it has one (GPU); None on CPU."""
    import jax
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # noqa: BLE001
        return None
    if not stats:
        return None
    return {k: int(v) for k, v in stats.items() if k in ("peak_bytes_in_use", "bytes_in_use", "bytes_limit")}


# ----------------------------------------------------------------------------------------------- functions

def probs_fn(model, model_name: str, dtype_name: str):
    """(variables, [state,] uint8 frames (N, H, W, 3)) -> [state,] probabilities (N, H, W) float32."""
    import jax
    import jax.numpy as jnp

    if get_spec(model_name).temporal:
        def step(variables, state, frames):
            x = frames.astype(jnp.float32) * (1.0 / 255.0)
            state, logits = model.apply(variables, state, x, method="step")
            return state, jax.nn.sigmoid(logits[..., 0].astype(jnp.float32))
        return step

    def apply(variables, frames):
        x = frames.astype(jnp.float32) * (1.0 / 255.0)
        return jax.nn.sigmoid(model.apply(variables, x, train=False)[..., 0].astype(jnp.float32))
    return apply


def fused_probs_fn(dtype):
    import jax
    import jax.numpy as jnp


    def apply(folded, frames):
        x = frames.astype(jnp.float32) * (1.0 / 255.0)
        return jax.nn.sigmoid(fused_apply(folded, x, dtype=dtype)[..., 0])
    return apply
