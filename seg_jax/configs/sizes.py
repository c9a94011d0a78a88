"""One way to write a size on every command line: ``HxW`` (e.g. ``256x256``), lists comma-separated.

The older ``H,W`` form of a single size is still read, with a one-line deprecation note on stderr.
"""
from __future__ import annotations

import sys


def parse_size(text: str, *, flag: str = "size") -> tuple[int, int]:
    """``"160x288"`` -> (160, 288); ``"160,288"`` too, with a deprecation note. A bad value raises a one-line
    ``ValueError`` naming the flag and the accepted form."""
    raw = str(text).strip().lower()
    parts = raw.split("x")
    if len(parts) != 2 and raw.count(",") == 1:
        parts = raw.split(",")
        print(f"note: --{flag} {text}: the H,W form is deprecated; write {parts[0].strip()}x{parts[1].strip()}",
              file=sys.stderr)
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--{flag} {text!r} is not a size; write HxW, e.g. 256x256") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"--{flag} {text!r}: height and width must be positive, e.g. 256x256")
    return h, w


def parse_sizes(text: str, *, flag: str = "sizes") -> tuple[tuple[int, int], ...]:
    """``"256x256,160x256"`` -> ((256, 256), (160, 256))."""
    if "x" not in text.lower():
        return (parse_size(text, flag=flag),)
    return tuple(parse_size(part, flag=flag) for part in text.split(",") if part.strip())


__all__ = ["parse_size", "parse_sizes"]
