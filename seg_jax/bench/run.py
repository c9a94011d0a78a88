"""The benchmark: streaming latency, end-to-end, throughput, training, peers -> one JSON.

Every jitted function is lowered and compiled explicitly (compile time recorded, no recompiles while timing);
warm-up calls are excluded; each figure is the median (and p95) of many calls, with the load average at
measurement time. Variants of the same measurement (e.g. Flax vs BatchNorm-folded) are timed round-robin so
that load changes on a shared machine hit them equally. The sections live in ``sections_*.py``; a section is
``section(runner) -> rows``, registered in ``SECTIONS`` below.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

from seg_jax.bench import sections_batch, sections_data, sections_e2e, sections_model, sections_peers
from seg_jax.bench.common import model_variables, peak_device_memory, random_variables
from seg_jax.bench.options import FUSED_VARIANTS, Options
from seg_jax.bench.ratios import ratios
from seg_jax.bench.timing import hardware, load_average
from seg_jax.common import writer
from seg_jax.models.build import build_model

# section name -> section(runner) -> rows, in the order a run measures them
SECTIONS: dict[str, Callable] = {
    "latency": sections_model.latency, "ablation": sections_model.ablation, "e2e": sections_e2e.e2e,
    "throughput": sections_batch.throughput, "train": sections_batch.train,
    "datapath": sections_data.datapath, "peers": sections_peers.peers,
    "paired": sections_peers.paired,
}


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
            from seg_jax.inference.fused import fold_batchnorm, folded_to_device
            self._folded[name, dot_dtype] = folded_to_device(fold_batchnorm(self.variables(name)), dot_dtype)
        return self._folded[name, dot_dtype]

    def model(self, name: str, dtype: str = "float32"):
        return build_model({"name": name, "dtype": dtype})

    def run(self, partial_out: Optional[str | os.PathLike] = None) -> dict[str, Any]:
        """Run the selected sections; with ``partial_out`` the JSON is rewritten after every section, so an
        interrupted run keeps what it measured."""
        import jax

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
        for section in SECTIONS:
            if section not in o.sections:
                continue
            s0 = time.perf_counter()
            try:
                res[section] = SECTIONS[section](self)
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


def write_json(res: dict[str, Any], out: str | os.PathLike) -> Path:
    """The benchmark's JSON through the one writer (complete or not at all; the earlier file kept on failure)."""
    return writer.write_json(out, res, indent=1, option="--out")


__all__ = ["FUSED_VARIANTS", "Options", "Runner", "SECTIONS", "random_variables", "ratios", "write_json"]
