"""Checks of the live tool's options made before anything is loaded: numeric ranges, and an output that would
destroy the input. Each failure is one :class:`LiveError` line naming the option, its accepted range and the fix.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from seg_jax.common.writer import same_file
from seg_jax.live.errors import LiveError
from seg_jax.live.sources import IMAGE_EXTENSIONS, SAMPLE_VIDEO

# Accepted ranges: beyond them a value is a typo, not a look (a 100-pixel feather or expand at 640x360 is
# already most of a face) and costs the loop time for nothing.
MAX_BLUR = 100.0
MAX_FEATHER = 50.0
MAX_EXPAND = 50


def _finite(name: str, value: float) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise LiveError(f"{name} must be a finite number, got {value}")
    return value


def check_numbers(opts) -> None:
    """Every numeric option of ``opts`` (:class:`seg_jax.live.app.LiveOptions`) inside its range."""
    if opts.threshold is not None and not 0.0 < _finite("--threshold", opts.threshold) < 1.0:
        raise LiveError(f"--threshold must be between 0 and 1, got {opts.threshold}")
    if not 0.0 <= _finite("--smooth", opts.smooth) < 1.0:
        raise LiveError(f"--smooth must be in [0, 1), got {opts.smooth}")
    if not 0.0 <= _finite("--feather", opts.feather) <= MAX_FEATHER:
        raise LiveError(f"--feather must be 0..{MAX_FEATHER:g} pixels, got {opts.feather}")
    if not -MAX_EXPAND <= int(opts.expand) <= MAX_EXPAND:
        raise LiveError(f"--expand must be -{MAX_EXPAND}..{MAX_EXPAND} pixels, got {opts.expand}")
    if opts.fps is not None and not 0.0 < _finite("--fps", opts.fps) <= 1000.0:
        raise LiveError(f"--fps must be in (0, 1000], got {opts.fps}")
    if opts.max_frames is not None and int(opts.max_frames) < 1:
        raise LiveError(f"--max-frames must be at least 1, got {opts.max_frames}")
    if not 0.0 < _finite("--guided-eps", opts.guided_eps) <= 1.0:
        raise LiveError(f"--guided-eps must be in (0, 1], got {opts.guided_eps}")
    if opts.stabilise is not None and not 0.0 <= _finite("--stabilise", opts.stabilise) < 1.0:
        raise LiveError(f"--stabilise strength must be in [0, 1) (0 turns it off), got {opts.stabilise}")
    if not 0.0 <= _finite("--light-wrap", opts.light_wrap) <= 1.0:
        raise LiveError(f"--light-wrap must be in [0, 1] (0 turns it off), got {opts.light_wrap}")
    from seg_jax.inference.segmenter import check_every
    try:
        check_every(opts.every)
    except ValueError as e:
        raise LiveError(f"--{e} (--every 2 runs the network on every other frame)") from None


def check_blur(sigma: float) -> float:
    """A blur strength (Gaussian sigma in pixels) in (0, MAX_BLUR]."""
    sigma = _finite("blur strength", sigma)
    if not 0.0 < sigma <= MAX_BLUR:
        raise LiveError(f"blur strength must be in (0, {MAX_BLUR:g}], got {sigma:g} (e.g. --mode blur:12)")
    return sigma


def check_output_spares_input(source: str, output: Optional[str]) -> None:
    """Refuse an ``--output`` that is the ``--source`` file, the source folder, one of its images, or the folder
    holding a source image (a folder output names its files after the inputs, so it would write beside, or
    onto, the original)."""
    if not output:
        return
    src = SAMPLE_VIDEO if source == "sample" else Path(source)
    out = Path(output)
    if not src.exists():
        return
    fix = "choose another --output (the input would be overwritten)"
    if src.is_file() and same_file(src, out):
        raise LiveError(f"--output {output} is the --source file; {fix}")
    if src.is_file() and src.suffix.lower() in IMAGE_EXTENSIONS and not out.suffix and same_file(src.parent, out):
        raise LiveError(f"--output {output} is the folder of the --source image: the result would be written "
                        f"among the originals ({out / (src.stem + '.png')}); choose another --output folder")
    if src.is_dir():
        if same_file(src, out):
            raise LiveError(f"--output {output} is the --source folder; {fix}")
        if out.suffix.lower() in IMAGE_EXTENSIONS and same_file(src, out.parent):
            stem = out.stem
            if any(p.stem == stem or p.stem.startswith(stem + "_") for p in src.iterdir()
                   if p.suffix.lower() in IMAGE_EXTENSIONS):
                raise LiveError(f"--output {output} would overwrite images of the --source folder; {fix}")


def check_choices(opts) -> None:
    """The word-valued options of ``opts`` (``--failsafe``, ``--people``, ``--preset``) among their accepted
    values; a bad one is one :class:`LiveError` line naming them."""
    from seg_jax.live.failsafe import ACTIONS
    from seg_jax.live.people import PEOPLE
    from seg_jax.live.presets import get_preset
    if opts.failsafe not in ACTIONS:
        raise LiveError(f"unknown --failsafe {opts.failsafe!r}; use {', '.join(ACTIONS)}")
    if opts.people not in PEOPLE:
        raise LiveError(f"unknown --people {opts.people!r}; use {', '.join(PEOPLE)}")
    get_preset(opts.preset)
