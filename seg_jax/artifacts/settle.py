"""A temporal model's stream settles on its first frame: the weights' ``settle_steps`` and its check.

Weights whose ConvLSTM cells average over time (:mod:`seg_jax.convert.convlstm_warm_start`, ``input_gate=
'complement'``) declare in their manifest how many extra passes over a stream's first frame bring that memory to
its steady state. Every reader of the field (the Segmenter, the ONNX runner, evaluate, the exporters, the training
recipes) checks it here. No JAX import: the ONNX runner uses it too.
"""
from __future__ import annotations

import numbers
from typing import Any, Mapping

MAX_SETTLE_STEPS = 1000


def check_settle_steps(value: Any, where: str) -> int:
    """``value`` as an int when it is an integer in 0..MAX_SETTLE_STEPS; else a one-line ValueError naming
    ``where`` (which should say how to fix it)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value <= MAX_SETTLE_STEPS:
        raise ValueError(f"{where}: bad settle_steps {value!r} (want an integer 0..{MAX_SETTLE_STEPS})")
    return int(value)


def manifest_settle_steps(manifest: Mapping[str, Any], source: Any = None) -> int:
    """A weights manifest's ``settle_steps`` (0 when absent), checked; ``source`` names the weights folder."""
    where = f"the weights manifest of {source or 'the shipped weights'} (fix its manifest.json)"
    return check_settle_steps(manifest.get("settle_steps", 0), where)
