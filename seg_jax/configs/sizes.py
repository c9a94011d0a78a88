"""Size parsing for the command lines: the one rule lives in :mod:`seg_jax.inference.sizes` (``HxW``, e.g.
``256x256``; lists comma-separated); this module names it for the CLIs that import it from here."""
from __future__ import annotations

from seg_jax.inference.sizes import parse_size, parse_sizes

__all__ = ["parse_size", "parse_sizes"]
