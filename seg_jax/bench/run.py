"""The benchmark: streaming latency, end-to-end, throughput, training, peers -> one JSON.

Every jitted function is lowered and compiled explicitly (compile time recorded, no recompiles while timing);
warm-up calls are excluded; each figure is the median (and p95) of many calls, with the load average at
measurement time. Variants of the same measurement (e.g. Flax vs BatchNorm-folded) are timed round-robin so
that load changes on a shared machine hit them equally.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

MODEL_NAMES = ("mobilenet", "convlstm", "unet")
# The BatchNorm-folded variants, by the dtype their 1x1 products take (seg_jax.fused's dot_dtype)
FUSED_VARIANTS = {"float32": "fused-bn-float32", "bfloat16": "fused-bn-bf16dot"}


@dataclasses.dataclass
class Options:
    suite: str = "cpu"                                     # cpu | gpu
    models: tuple[str, ...] = ("mobilenet", "convlstm", "unet")
    sizes: tuple[tuple[int, int], ...] = ((256, 256), (160, 256))      # model inputs (H, W), multiples of 32
    frames: tuple[tuple[int, int], ...] = ((480, 640), (720, 1280))    # end-to-end frame sizes (H, W)
    e2e_input: tuple[int, int] = (256, 256)               # model input for the end-to-end step
    e2e_composite: bool = True                            # also time the alpha-composite variants
    sections: tuple[str, ...] = ("latency", "ablation", "e2e", "throughput", "train", "peers", "paired")
    warmup: int = 10
    iters: int = 100
    e2e_iters: int = 50
    throughput_batch: int = 16
    throughput_iters: int = 10
    throughput_dtypes: tuple[str, ...] = ("float32", "bfloat16")
    train_batch: int = 4
    train_size: tuple[int, int] = (256, 256)
    train_iters: int = 5
    train_models: Optional[tuple[str, ...]] = None        # default: models, minus unet on CPU
    clip_length: int = 2                                  # T for the temporal model's training clips
    unet_max_seconds: float = 20.0                        # time budget per U-Net latency measurement
    peer_iters: int = 100
    peer_install: bool = True
    paired_rounds: int = 12                               # paired section: alternating blocks of seg_jax / peer
    paired_block: int = 10                                # calls per block
    bf16_latency: bool = True                             # also time bfloat16 compute at batch 1
    variants: Optional[tuple[str, ...]] = None            # only variants whose name contains one of these
    seed: int = 0

    @classmethod
    def for_suite(cls, suite: str, quick: bool = False, **overrides) -> "Options":
        o = cls(suite=suite)
        if suite == "gpu":
            o.iters, o.e2e_iters, o.throughput_batch, o.throughput_iters = 500, 300, 256, 50
            o.train_batch, o.train_iters, o.peer_iters, o.clip_length = 64, 30, 300, 4
        if quick:
            o.models = ("mobilenet",)
            o.frames = ((480, 640),)
            o.sections = ("latency", "e2e", "throughput", "peers", "paired")
            o.warmup, o.iters, o.e2e_iters, o.throughput_batch, o.throughput_iters = 3, 30, 15, 4, 3
            o.paired_rounds, o.paired_block = 8, 8
            o.peer_iters, o.bf16_latency, o.e2e_composite = 30, False, False
        for k, v in overrides.items():
            if v is not None:
                setattr(o, k, v)
        return o


# ----------------------------------------------------------------------------------------------- variables

def random_variables(model_name: str, seed: int = 0) -> dict:
    """Well-scaled untrained variables (speed does not depend on values), with non-identity BatchNorm so that
    BN folding is really exercised: ``seg_jax.segmenter.random_variables(..., bn_jitter=True)``."""
    from seg_jax.segmenter import random_variables as segmenter_random_variables
    return segmenter_random_variables(model_name, seed, bn_jitter=True)


def model_variables(model_name: str, seed: int = 0) -> tuple[dict, str]:
    """Shipped weights when ``seg_jax/weights/<model>/`` exists, else random ones (same speed)."""
    from seg_jax.model_io import load_weights, shipped_weights_dir
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


def _reset_peak() -> None:
    # jax has no public reset of the peak counter; record it per section, it is monotone.
    return None


# ----------------------------------------------------------------------------------------------- functions

def _probs_fn(model, model_name: str, dtype_name: str):
    """(variables, [state,] uint8 frames (N, H, W, 3)) -> [state,] probabilities (N, H, W) float32."""
    import jax
    import jax.numpy as jnp

    from seg_jax.models import is_temporal
    if is_temporal(model_name):
        def step(variables, state, frames):
            x = frames.astype(jnp.float32) * (1.0 / 255.0)
            state, logits = model.apply(variables, state, x, method="step")
            return state, jax.nn.sigmoid(logits[..., 0].astype(jnp.float32))
        return step

    def apply(variables, frames):
        x = frames.astype(jnp.float32) * (1.0 / 255.0)
        return jax.nn.sigmoid(model.apply(variables, x, train=False)[..., 0].astype(jnp.float32))
    return apply


def _fused_probs_fn(dtype):
    import jax
    import jax.numpy as jnp

    from seg_jax.bench.fused import fused_apply

    def apply(folded, frames):
        x = frames.astype(jnp.float32) * (1.0 / 255.0)
        return jax.nn.sigmoid(fused_apply(folded, x, dtype=dtype)[..., 0])
    return apply


class Runner:
    def __init__(self, options: Options, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr,
                                                                                         flush=True)):
        self.o = options
        self.log = log
        self._vars: dict[str, tuple[dict, str]] = {}
        self._folded: dict[str, Any] = {}
        self.result: dict[str, Any] = {}

    # -- helpers
    def want(self, variant: str) -> bool:
        return self.o.variants is None or any(v in variant for v in self.o.variants)

    def variables(self, name: str) -> dict:
        if name not in self._vars:
            self._vars[name] = model_variables(name, self.o.seed)
        return self._vars[name][0]

    def folded(self, name: str, dot_dtype: str = "float32"):
        """Folded weights; ``dot_dtype`` is the dtype the 1x1 kernels are stored (and multiplied) in."""
        if (name, dot_dtype) not in self._folded:
            from seg_jax.bench.fused import fold_batchnorm, folded_to_device
            self._folded[name, dot_dtype] = folded_to_device(fold_batchnorm(self.variables(name)), dot_dtype)
        return self._folded[name, dot_dtype]

    def model(self, name: str, dtype: str = "float32"):
        from seg_jax.model_io import build_model
        return build_model({"name": name, "dtype": dtype})

    # -- sections
    def latency(self) -> list[dict]:
        """Batch-1 streaming latency at each model input size; uint8 frame in, probabilities out."""
        import jax.numpy as jnp

        from seg_jax.bench.timing import interleaved, time_calls
        from seg_jax.models import UNetMobileNetConvLSTM, is_temporal
        o, rows = self.o, []
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
                    if not self.want(f"flax-{dtype_name}"):
                        continue
                    model = self.model(name, dtype_name)
                    fn = _probs_fn(model, name, dtype_name)
                    v = self.variables(name)
                    if is_temporal(name):
                        state0 = UNetMobileNetConvLSTM.initial_state(1, h, w)
                        compiled, ci = compile_fn(fn, v, state0, frame, donate_argnums=(1,))
                        box = {"state": UNetMobileNetConvLSTM.initial_state(1, h, w)}

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
                    if name != "mobilenet" or not self.want(key):
                        continue
                    folded = self.folded(name, dot_dtype)
                    compiled, ci = compile_fn(_fused_probs_fn(jnp.float32), folded, frame)
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
                    self.log(f"latency {name:9s} {h}x{w} {key:18s} median {s['median_ms']:7.2f} ms "
                             f"p95 {s['p95_ms']:7.2f} ({s['items_per_s']:6.1f} fps) compile {info[key]['compile_s']}s "
                             f"load {s['load_avg_after'][:1]}")
        return rows

    def ablation(self) -> list[dict]:
        """Before/after of each kept optimisation, mobilenet batch 1 at the first input size, round-robin.

        Steps: the Flax model -> BatchNorm folded (1x1 as convolution, XLA stem conv, head after the last
        upsample) -> 1x1 convs as dot -> stem conv as shift-and-add -> head before the last upsample (= the
        'fused-bn-float32' path of the other sections) -> 1x1 products with bfloat16 operands and float32
        accumulation ('fused-bn-bf16dot'; the streaming default on CPUs with native bfloat16 dots).
        """
        import jax
        import jax.numpy as jnp

        from seg_jax.bench.fused import fused_apply
        from seg_jax.bench.timing import interleaved
        o = self.o
        if "mobilenet" not in o.models:
            return [{"skipped": "ablation runs on the mobilenet model only"}]
        h, w = o.sizes[0]
        frame = jnp.asarray(make_frames([(h, w)], o.seed)[f"{h}x{w}"][None])
        v, folded = self.variables("mobilenet"), self.folded("mobilenet")
        steps = [("1 flax (BatchNorm at run time)", None),
                 ("2 + BN folded", dict(pointwise_as_dot=False, stem_shift_add=False, head_before_upsample=False)),
                 ("3 + 1x1 convs as dot", dict(stem_shift_add=False, head_before_upsample=False)),
                 ("4 + stem conv shift-and-add", dict(head_before_upsample=False)),
                 ("5 + head before last upsample", dict(dot_dtype="float32")),
                 ("6 + 1x1 products in bfloat16", dict(dot_dtype="bfloat16"))]
        calls, info, ref = {}, {}, None
        for key, kw in steps:
            if kw is None:
                fn, params = _probs_fn(self.model("mobilenet"), "mobilenet", "float32"), v
            else:
                def fn(p, frames, kw=kw):
                    x = frames.astype(jnp.float32) * (1.0 / 255.0)
                    return jax.nn.sigmoid(fused_apply(p, x, **kw)[..., 0])
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
            self.log(f"ablation {key:34s} median {s['median_ms']:7.2f} ms cpu {s.get('cpu_median_ms', 0):6.2f} ms "
                     f"x{rows[-1]['speedup_vs_flax']:.2f} vs flax")
        return rows

    def e2e(self) -> list[dict]:
        """Frame (H, W, 3) uint8 -> resize -> model -> guided-filter upsample [-> composite] at frame resolution.

        The product path: :class:`seg_jax.streaming.StreamingStep` (separately jitted pieces), with the Flax network
        ('streaming-*', ``fast=False``) and the BatchNorm-folded one ('fused-bn-*', the default). Variants:
        '-alpha' (alpha on device), '+composite' (uint8 composite over a background, one more jit), '+blur'
        (the live tool's default: :func:`seg_jax.ops.composite.render` in mode 'blur', background blurred),
        '+decode' (decode included: a JPEG of the frame, as a webcam's MJPEG stream delivers it, decoded with
        OpenCV, BGR -> RGB, the step, and the alpha copied to a NumPy array), '-onejit' (the whole step as one
        jit, the previous implementation's form, slower on CPU).
        """
        import jax
        import jax.numpy as jnp

        from seg_jax.bench.timing import interleaved
        o, rows = self.o, []
        try:
            from seg_jax import streaming
            from seg_jax.fused import stored_dot_dtype
        except Exception as e:  # noqa: BLE001
            return [{"skipped": f"seg_jax.streaming not importable ({type(e).__name__}: {e})"}]
        try:
            import cv2
        except Exception:  # noqa: BLE001 - the decode variant needs OpenCV
            cv2 = None
        from seg_jax.ops.composite import AlphaOptions, CompositeOptions, render
        frames = make_frames(o.frames, o.seed)
        refine = streaming.Refine()
        size = tuple(o.e2e_input)
        blur_options = CompositeOptions("blur")

        @jax.jit
        def composite(frame, alpha, background):
            a = alpha[..., None]
            out = frame.astype(jnp.float32) * a + background.astype(jnp.float32) * (1.0 - a)
            return jnp.clip(jnp.round(out), 0, 255).astype(jnp.uint8)

        for name in o.models:
            if name == "unet" and o.suite == "cpu":
                rows.append({"model": name, "skipped": "U-Net end-to-end skipped on CPU (seconds per frame; "
                                                       "see latency rows)"})
                continue
            v = self.variables(name)
            model = self.model(name)
            steps = {"streaming": streaming.StreamingStep(model, name, v, size, refine, fast=False)}
            fast = streaming.StreamingStep(model, name, v, size, refine, fast=True)
            if fast.fast:
                steps["fused-bn"] = fast
            for (fh, fw) in o.frames:
                frame_np = frames[f"{fh}x{fw}"]
                frame = jnp.asarray(frame_np)
                background = jnp.zeros_like(frame)
                jpeg = cv2.imencode(".jpg", frame_np[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1] if cv2 else None
                variants = []
                for prefix, st in steps.items():
                    variants += [(f"{prefix}-alpha", st, "alpha"), (f"{prefix}+composite", st, "composite")]
                    if prefix == "fused-bn" or len(steps) == 1:
                        if jpeg is not None:
                            variants.append((f"{prefix}-alpha+decode", st, "decode"))
                        variants.append((f"{prefix}-alpha-onejit", st, "onejit"))
                        variants.append((f"{prefix}+blur", st, "blur"))
                variants = [x for x in variants
                            if self.want(x[0]) and (o.e2e_composite or x[2] not in ("composite", "blur"))]
                calls, info = {}, {}
                for key, st, kind in variants:
                    box = {"state": st.init_state()}

                    def call(st=st, box=box, kind=kind):
                        if kind == "decode":
                            rgb = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1]
                            box["state"], alpha = st(box["state"], np.ascontiguousarray(rgb))
                            np.asarray(alpha)
                            return
                        if kind == "onejit":
                            box["state"], alpha = st.single_jit_step(box["state"], frame)
                        else:
                            box["state"], alpha = st(box["state"], frame)
                        if kind == "composite":
                            out = composite(frame, alpha, background)
                        elif kind == "blur":
                            out = render(frame, alpha, None, None, 0.0, AlphaOptions(), blur_options)[0]
                        else:
                            out = alpha
                        out.block_until_ready()
                    t0 = time.perf_counter()
                    call()  # compiles every piece for this frame size (first call excluded from timing)
                    calls[key] = call
                    # compile_s: the first call (compiles every jitted piece for this frame size, runs once)
                    info[key] = {"compile_s": round(time.perf_counter() - t0, 3), "fast": st.fast,
                                 "form": "one jit" if kind == "onejit" else "separately jitted pieces",
                                 "dot_dtype": str(stored_dot_dtype(st.params)) if st.fast else "float32"}
                stats = interleaved(calls, warmup=o.warmup, iters=o.e2e_iters)
                for key, s in stats.items():
                    rows.append({"model": name, "variant": key, "frame": [fh, fw], "input": list(size),
                                 "refine": dataclasses.asdict(refine), **info[key], **s})
                    self.log(f"e2e     {name:9s} {fh}x{fw} {key:24s} median {s['median_ms']:7.2f} ms "
                             f"p95 {s['p95_ms']:7.2f} ({s['items_per_s']:6.1f} fps) load {s['load_avg_after'][:1]}")
        return rows

    def throughput(self) -> list[dict]:
        """Frames/s at a large batch, float32 and bfloat16 compute (per-frame models)."""
        import jax.numpy as jnp

        from seg_jax.bench.timing import time_calls
        from seg_jax.models import is_temporal
        o, rows = self.o, []
        h, w = o.sizes[0]
        b = o.throughput_batch
        rng = np.random.default_rng(o.seed)
        frames = jnp.asarray(rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8))
        for name in o.models:
            if is_temporal(name):
                rows.append({"model": name, "skipped": "per-frame throughput: same network as 'mobilenet' plus "
                                                       "the ConvLSTM cells; see its training/latency rows"})
                continue
            if name == "unet" and o.suite == "cpu":
                rows.append({"model": name, "skipped": "U-Net large-batch throughput skipped on CPU (too slow)"})
                continue
            variants = [(f"flax-{d}", d, None) for d in o.throughput_dtypes]
            if name == "mobilenet":
                variants += [(key, None, dot_dtype) for dot_dtype, key in FUSED_VARIANTS.items()]
            for key, dtype_name, dot_dtype in [v for v in variants if self.want(v[0])]:
                if dtype_name is None:
                    folded = self.folded(name, dot_dtype)
                    compiled, ci = compile_fn(_fused_probs_fn(jnp.float32), folded, frames)
                    params = folded
                else:
                    params = self.variables(name)
                    compiled, ci = compile_fn(_probs_fn(self.model(name, dtype_name), name, dtype_name),
                                              params, frames)
                s = time_calls(lambda: compiled(params, frames).block_until_ready(), warmup=2,
                               iters=o.throughput_iters, items=b)
                rows.append({"model": name, "variant": key, "input": [h, w], "batch": b, **ci, **s,
                             "peak_device_memory": peak_device_memory()})
                self.log(f"thruput {name:9s} b{b} {key:18s} {s['items_per_s']:8.1f} frames/s")
        return rows

    def train(self) -> list[dict]:
        """Training examples/s at ``train_size``: float32 and mixed precision (bf16 compute, f32 params)."""
        import jax
        import jax.numpy as jnp

        from seg_jax.bench.timing import time_calls
        from seg_jax.models import is_temporal
        o, rows = self.o, []
        models = o.train_models if o.train_models is not None else tuple(
            m for m in o.models if not (m == "unet" and o.suite == "cpu"))
        if "unet" in o.models and "unet" not in models:
            rows.append({"model": "unet", "skipped": "U-Net training skipped on CPU (31M params: tens of seconds "
                                                     "per step); pass --train-models unet to force"})
        h, w = o.train_size
        b = o.train_batch
        rng = np.random.default_rng(o.seed)
        for name in models:
            for dtype_name in ("float32", "bfloat16"):
                shape = (b, o.clip_length, h, w) if is_temporal(name) else (b, h, w)
                batch = {"image": jnp.asarray(rng.integers(0, 256, shape + (3,), dtype=np.uint8)),
                         "mask": jnp.asarray((rng.random(shape + (1,)) > 0.5).astype(np.uint8) * 255)}
                model = self.model(name, dtype_name)
                step, state, impl = self._train_step(name, model, dtype_name)
                compiled, ci = compile_fn(step, state, batch, donate_argnums=(0,))
                box = {"state": state}

                def call():
                    box["state"], metrics = compiled(box["state"], batch)
                    jax.block_until_ready(metrics)
                frames = b * (o.clip_length if is_temporal(name) else 1)
                s = time_calls(call, warmup=1, iters=o.train_iters, items=frames)
                rows.append({"model": name, "dtype": dtype_name, "input": [h, w], "batch": b,
                             "frames_per_example": frames // b, "impl": impl, **ci, **s,
                             "examples_per_s": b * 1e3 / s["median_ms"],
                             "peak_device_memory": peak_device_memory()})
                self.log(f"train   {name:9s} {dtype_name:8s} b{b} {s['items_per_s']:8.1f} frames/s ({impl})")
        return rows

    def _train_step(self, name: str, model, dtype_name: str):
        """The project's jitted train_step (seg_jax.steps) when importable, else a local Adam + Dice step."""
        import jax
        import jax.numpy as jnp
        import optax
        variables = jax.tree_util.tree_map(jnp.array, self.variables(name))  # fresh buffers (donated)
        try:
            from seg_jax import steps
            from seg_jax.configs.default import get_default_config
            config = get_default_config()
            config.model.name = name
            config.model.dtype = dtype_name
            optimizer = steps.make_optimizer(config)
            state = steps.create_train_state(variables, optimizer, jax.random.key(0))
            fn = lambda st, bt: steps.train_step(st, bt, model=model, model_name=name, config=config)  # noqa: E731
            return fn, state, "seg_jax.steps.train_step"
        except ImportError:
            pass
        from seg_jax.models import is_temporal
        opt = optax.adam(1e-4)

        def step(state, batch):
            params, stats, opt_state = state
            x = batch["image"].astype(jnp.float32) / 255.0
            t = batch["mask"].astype(jnp.float32) / 255.0

            def loss_fn(p):
                out, upd = model.apply({"params": p, "batch_stats": stats}, x, train=True, mutable=["batch_stats"])
                logits = out[0] if is_temporal(name) else out
                prob = jax.nn.sigmoid(logits.astype(jnp.float32))
                inter = jnp.sum(prob * t)
                return 1 - (2 * inter + 1) / (jnp.sum(prob) + jnp.sum(t) + 1), upd["batch_stats"]
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), stats, opt_state), {"loss": loss}
        p = variables["params"]
        return step, (p, variables["batch_stats"], opt.init(p)), "bench-local adam+dice"

    def peers(self) -> dict[str, Any]:
        from seg_jax.bench import peers
        o = self.o
        if o.suite == "gpu":
            return {"torchvision": peers.run_torchvision_lraspp(
                sizes=[tuple(o.sizes[0])], batch_sizes=[1, o.throughput_batch], warmup=o.warmup,
                iters=o.iters)}
        sizes = sorted({tuple(s) for s in o.sizes} | {(256, 256), (144, 256)} | {tuple(f) for f in o.frames})
        frames = make_frames(sizes, o.seed)
        res = peers.run_mediapipe(frames, warmup=o.warmup, iters=o.peer_iters, install=o.peer_install)
        if res.get("status") == "ok":
            for r in res["results"]:
                self.log(f"peer    mediapipe {r['model']:18s} frame {r['frame']:9s} median {r['median_ms']:6.2f} ms")
        return {"mediapipe": res}

    def paired(self) -> list[dict]:
        """seg_jax's default path and MediaPipe timed in alternating blocks on the same frames (CPU suite).

        Each round times ``paired_block`` seg_jax calls, then ``paired_block`` peer calls (the order flips every
        round; each block starts with one untimed call on its side); the ratio is median(seg_jax) /
        median(peer) over all rounds, with the spread of the per-round ratios. A shared machine whose speed
        drifts between sections moves both sides alike here, unlike the ratio of the separate 'latency' and
        'peers' sections. seg_jax runs what ``Segmenter`` runs by default
        (BatchNorm folded, 1x1 products in :func:`seg_jax.fused.default_dot_dtype`).
        """
        import jax.numpy as jnp

        from seg_jax import streaming
        from seg_jax.bench import peers
        from seg_jax.fused import default_dot_dtype
        o = self.o
        if o.suite != "cpu":
            return [{"skipped": "paired rounds are against MediaPipe, on the CPU suite"}]
        if "mobilenet" not in o.models:
            return [{"skipped": "paired rounds use the mobilenet model"}]
        dot = default_dot_dtype()
        variant = FUSED_VARIANTS[dot]
        pairs = []  # (kind, our input or frame, our call, peer model, peer frame)
        net_sizes = [(256, 256, "general_256x256", "256x256"), (160, 256, "landscape_144x256", "144x256")]
        frame_sizes = [tuple(f) for f in o.frames[:1]]
        frames = make_frames({(h, w) for h, w, _, _ in net_sizes} | {(144, 256)} | set(frame_sizes), o.seed)
        folded = self.folded("mobilenet", dot)
        for h, w, peer_model, peer_frame in net_sizes:
            if (h, w) not in {tuple(x) for x in o.sizes}:
                continue
            frame = jnp.asarray(frames[f"{h}x{w}"][None])
            compiled, _ = compile_fn(_fused_probs_fn(jnp.float32), folded, frame)
            pairs.append(("latency", [h, w], lambda c=compiled, f=frame: c(folded, f).block_until_ready(),
                          peer_model, peer_frame))
        size = tuple(o.e2e_input)
        step = streaming.StreamingStep(self.model("mobilenet"), "mobilenet", self.variables("mobilenet"), size,
                                       streaming.Refine(), fast=True, folded=folded)
        for fh, fw in frame_sizes:
            frame = jnp.asarray(frames[f"{fh}x{fw}"])

            def call(frame=frame):
                step((), frame)[1].block_until_ready()
            for peer_model in ("general_256x256", "landscape_144x256"):
                pairs.append(("end-to-end (alpha at frame size)", [fh, fw], call, peer_model, f"{fh}x{fw}"))
        try:
            session = peers.MediaPipeSession(frames, warmup=o.warmup, install=o.peer_install)
        except RuntimeError as e:
            self.log(f"[bench] paired rounds skipped: {e}")
            return [{"skipped": f"MediaPipe peer unavailable: {e}"}]
        rows = []
        with session:
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
                       "peer": f"mediapipe {peer_model}", "peer_frame": peer_frame,
                       "rounds": o.paired_rounds, "block": o.paired_block,
                       "ours_ms": float(np.median(ours)), "peer_ms": float(np.median(theirs)),
                       "ours_p95_ms": float(np.percentile(ours, 95)), "peer_p95_ms": float(np.percentile(theirs, 95)),
                       "round_ratio_min": min(round_ratios), "round_ratio_max": max(round_ratios),
                       "round_ratio_median": float(np.median(round_ratios))}
                row["ratio"] = row["ours_ms"] / row["peer_ms"]
                rows.append(row)
                size = "x".join(map(str, where))
                self.log(f"paired  {kind[:10]:10s} {size:9s} {variant} {row['ours_ms']:6.2f} ms vs "
                         f"{peer_model} {row['peer_ms']:5.2f} ms = {row['ratio']:.2f}x (rounds "
                         f"{row['round_ratio_min']:.2f}-{row['round_ratio_max']:.2f})")
        return rows

    def run(self, partial_out: Optional[str | os.PathLike] = None) -> dict[str, Any]:
        """Run the selected sections; with ``partial_out`` the JSON is rewritten after every section, so an
        interrupted run keeps what it measured."""
        import jax

        from seg_jax.bench.timing import hardware, load_average
        o = self.o
        if o.suite == "gpu" and jax.default_backend() != "gpu":
            raise SystemExit(f"--suite gpu needs a GPU backend; jax sees {jax.default_backend()!r}")
        t0 = time.perf_counter()
        res: dict[str, Any] = {"schema": "seg_jax.bench/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                               "suite": o.suite, "options": dataclasses.asdict(o), "hardware": hardware(),
                               "notes": [
                                   "model inputs must be multiples of 32: MediaPipe's landscape model is 144x256, "
                                   "ours runs at 160x256 in its place",
                                   "latency: uint8 frame at the model input size -> probabilities, batch 1, "
                                   "variants timed round-robin; MediaPipe: SelfieSegmentation.process on the same "
                                   "frames in its own virtualenv (subprocess)",
                               ]}
        for section in ("latency", "ablation", "e2e", "throughput", "train", "peers", "paired"):
            if section not in o.sections:
                continue
            s0 = time.perf_counter()
            try:
                res[section] = getattr(self, section)()
            except Exception as e:  # noqa: BLE001 - one broken section must not lose the others
                import traceback
                traceback.print_exc()
                res[section] = {"error": f"{type(e).__name__}: {e}"}
            res.setdefault("section_seconds", {})[section] = round(time.perf_counter() - s0, 1)
            if partial_out is not None:
                write_json({**res, "partial": True}, partial_out)
        res["variables"] = {k: v[1] for k, v in self._vars.items()}
        res["peak_device_memory"] = peak_device_memory()
        res["ratios"] = ratios(res)
        res["load_avg_end"] = load_average()
        res["wall_seconds"] = round(time.perf_counter() - t0, 1)
        return res


# ----------------------------------------------------------------------------------------------- ratios

def _best(rows, **match) -> Optional[dict]:
    cands = [r for r in rows if isinstance(r, dict) and "median_ms" in r
             and all(r.get(k) == v for k, v in match.items())]
    return min(cands, key=lambda r: r["median_ms"]) if cands else None


def ratios(res: dict[str, Any]) -> list[dict[str, Any]]:
    """seg_jax / peer latency ratios (< 1 means seg_jax is faster): the paired rounds first (the robust
    figure), then the separate sections' best seg_jax variant per row."""
    out = [dict(r, kind=f"{r['kind']}, paired rounds") for r in (res.get("paired") or [])
           if isinstance(r, dict) and "ratio" in r]
    mp = (res.get("peers") or {}).get("mediapipe") or {}
    mp_rows = mp.get("results", []) if mp.get("status") == "ok" else []
    lat = res.get("latency") if isinstance(res.get("latency"), list) else []
    e2e = res.get("e2e") if isinstance(res.get("e2e"), list) else []
    pairs = [((256, 256), "general_256x256", "256x256"), ((160, 256), "landscape_144x256", "144x256")]
    for model in ("mobilenet", "convlstm"):
        for ours_size, peer_model, peer_frame in pairs:
            ours = _best(lat, model=model, input=list(ours_size))
            peer = next((r for r in mp_rows if r["model"] == peer_model and r["frame"] == peer_frame), None)
            if ours and peer:
                out.append({"kind": "latency", "model": model, "variant": ours["variant"], "input": list(ours_size),
                            "peer": f"mediapipe {peer_model}", "peer_frame": peer_frame,
                            "ours_ms": ours["median_ms"], "peer_ms": peer["median_ms"],
                            "ratio": ours["median_ms"] / peer["median_ms"]})
        for row in e2e:
            if row.get("model") != model or "median_ms" not in row or not row.get("variant", "").endswith("alpha"):
                continue
            frame = f"{row['frame'][0]}x{row['frame'][1]}"
            for peer in (r for r in mp_rows if r["frame"] == frame):
                out.append({"kind": "end-to-end (alpha at frame size)", "model": model, "variant": row["variant"],
                            "frame": row["frame"], "peer": f"mediapipe {peer['model']}",
                            "ours_ms": row["median_ms"], "peer_ms": peer["median_ms"],
                            "ratio": row["median_ms"] / peer["median_ms"]})
    tv = (res.get("peers") or {}).get("torchvision") or {}
    for r in tv.get("results", []) if tv.get("status") == "ok" else []:
        ours = _best(lat if r["batch"] == 1 else (res.get("throughput") or []), model="mobilenet",
                     input=list(r["size"]), **({} if r["batch"] == 1 else {"batch": r["batch"]}))
        if ours:
            out.append({"kind": f"batch {r['batch']}", "model": "mobilenet", "variant": ours["variant"],
                        "peer": f"torchvision lraspp {r['mode']} {r['dtype']}", "ours_ms": ours["median_ms"],
                        "peer_ms": r["median_ms"], "ratio": ours["median_ms"] / r["median_ms"]})
    return out


def write_json(res: dict[str, Any], out: str | os.PathLike) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(res, indent=1, default=str) + "\n")
    tmp.replace(path)
    return path
