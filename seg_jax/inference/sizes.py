"""The inference-size rule: how a size is written, which sizes a network takes, and which one a frame gets.

One home for every runner: the Segmenter and the streaming step (JAX), the live tool, the ONNX runner
(:mod:`seg_jax.onnx.runtime`, which must not import jax: this module imports only the standard library) and the
command lines that read a size (``HxW``, e.g. ``--input_size 160x288``).
"""
from __future__ import annotations

import math
import sys
from typing import Optional, Sequence, Union

SizeLike = Union[None, int, str, Sequence[int]]

# The inference size when neither the weights nor the caller name one (its pixels are the budget that
# choose_input_size spends on the frame's aspect ratio).
DEFAULT_INPUT_SIZE = (256, 256)
# The MobileNet models need multiples of 32 (five stride-2 stages); the baseline U-Net 16.
SIZE_MULTIPLE = 32
# Inference sizes above this per side are refused (a manifest asking for 32000x32000 would exhaust memory).
MAX_INPUT_SIDE = 2048


def _label(text: object, flag: Optional[str]) -> str:
    return f"--{flag} {text!r}" if flag else repr(text)


def parse_size(size: SizeLike, *, flag: Optional[str] = None, auto: bool = False) -> Optional[tuple[int, int]]:
    """A size as (h, w): ``"160x288"`` or ``(160, 288)`` -> (160, 288); ``256`` or ``"256"`` -> (256, 256).

    ``auto``: None, ``""`` and ``"auto"`` mean "choose for me" and give None (else they are errors). The older
    ``"H,W"`` form of one size is still read, with a one-line deprecation note on stderr. A bad value raises a
    one-line ``ValueError`` naming ``--flag`` (when given) and the accepted forms.
    """
    forms = "write HxW, e.g. 256x256 or 160x288" + (", or auto" if auto else "")
    if size is None or (isinstance(size, str) and size.strip().lower() in ("", "auto")):
        if auto:
            return None
        raise ValueError(f"{_label(size, flag)} is not a size; {forms}")
    if isinstance(size, bool):
        raise ValueError(f"{_label(size, flag)} is not a size; {forms}")
    if isinstance(size, int):
        parts: Sequence = (size, size)
    elif isinstance(size, str):
        raw = size.strip().lower()
        parts = raw.split("x")
        if len(parts) == 1 and raw.count(",") == 1:
            parts = raw.split(",")
            print(f"note: {_label(size, flag)}: the H,W form is deprecated; write {parts[0].strip()}x"
                  f"{parts[1].strip()}", file=sys.stderr)
        elif len(parts) == 1:
            parts = (raw, raw)
    else:
        parts = tuple(size)
    try:
        h, w = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise ValueError(f"{_label(size, flag)} is not a size; {forms}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"{_label(size, flag)}: height and width must be positive; {forms}")
    return h, w


def parse_sizes(text: str, *, flag: str = "sizes") -> tuple[tuple[int, int], ...]:
    """``"256x256,160x256"`` -> ((256, 256), (160, 256)); one size alone (``"256x256"``, ``"256"``) gives one."""
    if "x" not in text.lower():
        return (parse_size(text, flag=flag),)
    return tuple(parse_size(part, flag=flag) for part in text.split(",") if part.strip())


def check_input_size(size: Optional[Sequence[int]], multiple: int = SIZE_MULTIPLE) -> Optional[tuple[int, int]]:
    """``size`` as (h, w) if it is None or positive multiples of ``multiple`` of at most :data:`MAX_INPUT_SIDE`
    per side; else a one-line ``ValueError`` saying which sizes work."""
    if size is None:
        return None
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0 or h % multiple or w % multiple or max(h, w) > MAX_INPUT_SIDE:
        raise ValueError(f"input size must be multiples of {multiple} up to {MAX_INPUT_SIDE} (e.g. 256x256, "
                         f"160x288), got {h}x{w}")
    return h, w


def choose_input_size(frame_hw: Sequence[int], base_hw: Sequence[int] = DEFAULT_INPUT_SIZE, *,
                      keep_aspect: bool = True, multiple: int = SIZE_MULTIPLE,
                      tolerance: float = 0.03) -> tuple[int, int]:
    """Inference size (h, w) for a frame of ``frame_hw`` (H, W): ``base_hw`` itself, or the largest size with
    (about) the frame's aspect ratio.

    With ``keep_aspect``, candidates are sizes (multiples of ``multiple``) with at most the pixel count of
    ``base_hw``; among those whose aspect ratio is within ``tolerance`` (in log) of the frame's and that keep
    at least half the pixels, the largest wins; else the one with the least aspect error + 0.5 log(pixel loss).
    256x256 base: 16:9 -> 160x288, 4:3 -> 192x256, 3:4 -> 256x192, square -> 256x256.
    """
    bh, bw = int(base_hw[0]), int(base_hw[1])
    if not keep_aspect:
        return bh, bw
    fh, fw = int(frame_hw[0]), int(frame_hw[1])
    target = math.log(fw / fh)
    if abs(target - math.log(bw / bh)) <= tolerance:
        return bh, bw
    budget = bh * bw
    best, best_key = (bh, bw), None
    limit = 4 * max(bh, bw) // multiple
    for i in range(1, limit + 1):
        for j in range(1, limit + 1):
            h, w = i * multiple, j * multiple
            if h * w > budget:
                continue
            err = abs(math.log(w / h) - target)
            if err <= tolerance and 2 * h * w >= budget:
                key = (0, 0.0, -h * w)        # the frame's aspect: the largest such size
            else:                              # else trade aspect error against lost pixels
                key = (1, round(err + 0.5 * math.log(budget / (h * w)), 9), -h * w)
            if best_key is None or key < best_key:
                best, best_key = (h, w), key
    return best


__all__ = ["DEFAULT_INPUT_SIZE", "MAX_INPUT_SIDE", "SIZE_MULTIPLE", "SizeLike", "check_input_size",
           "choose_input_size", "parse_size", "parse_sizes"]
