"""``--preset quality|balanced|fast``: named combinations of model, inference size and alpha refinement.

A preset only fills what the command line left unset: an explicit ``--model``, ``--input-size``, ``--refine`` or
``--guided-subsample`` always wins. What each preset costs and scores here is measured by
``python -m seg_jax.live.bench presets`` (results/bench/presets.md). :data:`DEFAULT_PRESET` is meant to be the best
quality that keeps up with a 30 fps 640x480 camera; that table says whether its last run confirmed it.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from seg_jax.live.errors import LiveError


@dataclasses.dataclass(frozen=True)
class Preset:
    """``base_size``: the inference size's pixel budget ('HxW', adapted to the frame's aspect ratio; None: the
    weights' own); ``refine`` / ``guided_subsample``: as the flags of the same names."""
    name: str
    model: str
    base_size: Optional[str]
    refine: str
    guided_subsample: int
    help: str


PRESETS: tuple[Preset, ...] = (
    Preset("quality", "convlstm", None, "guided", 1, "ConvLSTM (steadiest on video), colour guided filter"),
    Preset("balanced", "mobilenet", None, "guided", 1, "U-Net MobileNet, colour guided filter"),
    Preset("fast", "mobilenet", "192x192", "guided-gray", 2,
           "U-Net MobileNet at a smaller inference size, luma guided filter fitted at half size"),
)
BY_NAME = {p.name: p for p in PRESETS}
DEFAULT_PRESET = "balanced"


def preset_help() -> str:
    return "; ".join(f"{p.name}: {p.help}" for p in PRESETS) + (
        f" (default: {DEFAULT_PRESET}; an explicit --model, --input-size, --refine or --guided-subsample wins)")


def get_preset(name: Optional[str]) -> Preset:
    """A preset by name (None: the default), or a one-line :class:`LiveError` naming the accepted ones."""
    name = DEFAULT_PRESET if name is None else str(name).strip().lower()
    if name not in BY_NAME:
        raise LiveError(f"unknown --preset {name!r}; use {', '.join(BY_NAME)}")
    return BY_NAME[name]


def apply_preset(opts):
    """``opts`` (:class:`seg_jax.live.app.LiveOptions`) with the preset's values where its fields are None."""
    preset = get_preset(opts.preset)
    pick = {"model": preset.model, "refine": preset.refine, "guided_subsample": preset.guided_subsample}
    filled = {k: v for k, v in pick.items() if getattr(opts, k) is None}
    if opts.base_size is None:
        filled["base_size"] = preset.base_size
    return dataclasses.replace(opts, preset=preset.name, **filled)


__all__ = ["BY_NAME", "DEFAULT_PRESET", "PRESETS", "Preset", "apply_preset", "get_preset", "preset_help"]
