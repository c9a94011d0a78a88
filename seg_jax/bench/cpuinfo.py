"""This machine's CPU as Linux describes it in ``/proc/cpuinfo`` (model name, feature flags).

Elsewhere (no ``/proc/cpuinfo``) the functions return None / an empty list and callers choose their fallback.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

CPUINFO = Path("/proc/cpuinfo")


def _field(name: str) -> Optional[str]:
    """The value of the first ``name : value`` line, or None."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name):
            return line.split(":", 1)[1].strip()
    return None


def cpu_model() -> Optional[str]:
    """E.g. 'AMD EPYC 9B14', or None where the OS does not say."""
    return _field("model name")


def cpu_flags() -> list[str]:
    """All feature flags of the first CPU (e.g. 'avx2', 'avx512_bf16'); [] where the OS does not say."""
    flags = _field("flags")
    return flags.split() if flags else []
