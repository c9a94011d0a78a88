"""seg_jax: person segmentation and background replacement for video calls, in JAX/Flax.

``import seg_jax`` stays light (no jax import); ``seg_jax.Segmenter`` is loaded on first use.
"""
from __future__ import annotations

from typing import Any

__all__ = ["Segmenter"]


def __getattr__(name: str) -> Any:
    if name == "Segmenter":
        from seg_jax.inference.segmenter import Segmenter
        return Segmenter
    raise AttributeError(f"module 'seg_jax' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
