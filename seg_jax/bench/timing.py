"""Timing primitives and machine description for the benchmark (no model code here)."""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from typing import Any, Callable, Sequence

import numpy as np

from seg_jax.bench import cpuinfo


def load_average() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:  # not on every OS
        return []


def block(tree: Any) -> Any:
    import jax
    return jax.block_until_ready(tree)


def summarize(times_s: Sequence[float], cpu_s: Sequence[float] | None = None, items: int = 1) -> dict[str, Any]:
    """Median / p95 / p10 / min / mean in ms of per-call wall times (and process CPU time per call)."""
    t = np.asarray(times_s, np.float64) * 1e3
    out = {"iters": int(t.size), "median_ms": float(np.median(t)), "p95_ms": float(np.percentile(t, 95)),
           "p10_ms": float(np.percentile(t, 10)), "min_ms": float(t.min()), "mean_ms": float(t.mean())}
    if cpu_s is not None and len(cpu_s):
        out["cpu_median_ms"] = float(np.median(np.asarray(cpu_s) * 1e3))
    out["items_per_s"] = items * 1e3 / out["median_ms"]
    return out


def time_calls(call: Callable[[], Any], *, warmup: int, iters: int, items: int = 1,
               max_seconds: float | None = None) -> dict[str, Any]:
    """Run ``call`` (which must block until its result is ready) ``warmup`` + ``iters`` times.

    Warm-up calls are excluded. ``max_seconds`` stops early (at least 3 timed calls) so that slow models
    stay within a time budget; the number actually run is reported as ``iters``.
    """
    for _ in range(warmup):
        call()
    load_before = load_average()
    wall, cpu = [], []
    start = time.perf_counter()
    for i in range(iters):
        c0, t0 = time.process_time(), time.perf_counter()
        call()
        t1, c1 = time.perf_counter(), time.process_time()
        wall.append(t1 - t0)
        cpu.append(c1 - c0)
        if max_seconds is not None and i >= 2 and time.perf_counter() - start > max_seconds:
            break
    out = summarize(wall, cpu, items)
    out["load_avg_before"] = load_before
    out["load_avg_after"] = load_average()
    return out


def interleaved(calls: dict[str, Callable[[], Any]], *, warmup: int, iters: int, items: int = 1) -> dict[str, dict]:
    """Time several variants round-robin (A B C A B C ...) so load drift hits them equally."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    wall = {k: [] for k in calls}
    cpu = {k: [] for k in calls}
    load_before = load_average()
    for _ in range(iters):
        for k, call in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    load_after = load_average()
    return {k: {**summarize(wall[k], cpu[k], items), "load_avg_before": load_before, "load_avg_after": load_after}
            for k in calls}


def cpu_model() -> str:
    return cpuinfo.cpu_model() or platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The vector / matrix instruction-set flags (what decides speed here)."""
    return sorted(f for f in cpuinfo.cpu_flags() if f.startswith(("avx", "fma", "amx", "sse4")))


def hardware() -> dict[str, Any]:
    import jax
    import jaxlib
    info: dict[str, Any] = {
        "hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu_model": cpu_model(), "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "device_kind": jax.devices()[0].device_kind,
        "xla_flags": os.environ.get("XLA_FLAGS", ""), "load_avg": load_average(),
        "compilation_cache_dir": os.environ.get("JAX_COMPILATION_CACHE_DIR"),
    }
    try:
        import flax
        info["flax"] = flax.__version__
    except ImportError:
        pass
    if jax.default_backend() == "gpu":
        try:
            info["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return info


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs))
