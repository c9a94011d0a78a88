"""A bound on how many frame sizes hold compiled code at once, so memory stays flat over a folder of photos of
many sizes.

XLA compiles the per-frame pieces (resize, refinement, compositing) once per frame size and keeps every
executable (tens of MB each at photo sizes) for the life of the process. :class:`CompiledSizes` remembers the
sizes compiled since the last flush; when a new size would exceed ``limit``, the caller drops all compiled code
(:func:`drop_compiled`) and starts over, so at most ``limit`` sizes are ever held. A video (one size) never
flushes; a folder of many sizes recompiles a size that comes back after a flush (seconds, not memory).
"""
from __future__ import annotations

import dataclasses
import gc
from typing import Hashable

DEFAULT_LIMIT = 6


@dataclasses.dataclass
class CompiledSizes:
    """The sizes compiled since the last flush (at most ``limit``)."""
    limit: int = DEFAULT_LIMIT
    sizes: set = dataclasses.field(default_factory=set)
    flushes: int = 0

    def __post_init__(self):
        if int(self.limit) < 1:
            raise ValueError(f"the compiled-size limit must be at least 1, got {self.limit}")

    def is_new(self, size: Hashable) -> bool:
        """Whether a frame of ``size`` compiles (it is not among the sizes held)."""
        return size not in self.sizes

    def add(self, size: Hashable) -> bool:
        """Record ``size``; -> True when the caller must first drop all compiled code (the bound is reached)."""
        if size in self.sizes:
            return False
        flush = len(self.sizes) >= self.limit
        if flush:
            self.sizes.clear()
            self.flushes += 1
        self.sizes.add(size)
        return flush


def drop_compiled() -> None:
    """Free every compiled executable of this process: seg_jax's cached step builders and JAX's caches (the
    next call of any jitted function recompiles)."""
    import jax

    from seg_jax.inference import streaming
    streaming.clear_compiled()
    jax.clear_caches()
    gc.collect()


__all__ = ["DEFAULT_LIMIT", "CompiledSizes", "drop_compiled"]
