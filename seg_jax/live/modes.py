"""The background modes of the live tool, in one registry: the ``--mode`` parser, its ``--help`` text, the
window's key bindings and the error messages are all generated from :data:`MODES`, so a mode is described once.

Each mode's name is a compositing mode of :mod:`seg_jax.ops.composite` (``MODES`` there); ``background`` says what
it shows behind the person, which the loop uses to decide what to prepare (an image, a looped video) and whether
the output shows the camera picture at all (the privacy fail-safe has nothing to hide in ``mask``).
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from seg_jax.live.checks import check_blur
from seg_jax.live.errors import LiveError


@dataclasses.dataclass(frozen=True)
class BackgroundMode:
    """One ``--mode``. ``syntax``: how it is written on the command line; ``key``: its key in the window;
    ``background``: 'blurred frame' | 'image' | 'video' | 'colour' | 'none' (the output is the alpha itself)."""
    name: str
    syntax: str
    key: str
    help: str
    background: str

    @property
    def shows_frame(self) -> bool:
        """Whether the output contains the camera picture (everything but the mask)."""
        return self.background != "none"


MODES: tuple[BackgroundMode, ...] = (
    BackgroundMode("blur", "blur[:<strength>]", "b", "blur the background (strength in pixels)", "blurred frame"),
    BackgroundMode("image", "image:<path>", "i", "replace the background with a picture", "image"),
    BackgroundMode("video", "video:<path>", "v", "replace the background with a looped video", "video"),
    BackgroundMode("color", "color:<r,g,b>", "c", "a solid colour behind the person", "colour"),
    BackgroundMode("green", "green", "g", "chroma-key green behind the person", "colour"),
    BackgroundMode("mask", "mask", "m", "the alpha itself (white person on black)", "none"),
)
BY_NAME = {m.name: m for m in MODES}
BY_KEY = {ord(m.key): m for m in MODES}

# Keys that are not modes (shown with the modes' keys in --help and by 'h' in the window).
OTHER_KEYS = (("t", "threshold"), ("+/-", "blur"), ("f", "mirror"), ("r", "reset"), ("h", "help"), ("q", "quit"))


def syntax_list() -> str:
    """'blur[:<strength>] | image:<path> | ...' (the --mode help and the unknown-mode error)."""
    return " | ".join(m.syntax for m in MODES)


def mode_help() -> str:
    """The ``--mode`` help text: every mode's syntax and what it does."""
    return "; ".join(f"{m.syntax}: {m.help}" for m in MODES) + " (default: blur)"


def help_keys() -> str:
    """The window's key map in one line."""
    keys = [f"{m.key} {m.name}" for m in MODES] + [f"{k} {what}" for k, what in OTHER_KEYS]
    return "keys: " + "  ".join(keys)


@dataclasses.dataclass
class Mode:
    """A parsed ``--mode``: a registry name plus its argument (blur sigma, path, colour)."""
    kind: str
    blur_sigma: float = 12.0
    path: Optional[str] = None
    color: tuple[int, int, int] = (0, 0, 0)

    @property
    def spec(self) -> BackgroundMode:
        return BY_NAME[self.kind]


def parse_mode(text: str, blur_sigma: float = 12.0) -> Mode:
    """One of the registry's syntaxes -> :class:`Mode`; anything else -> :class:`LiveError` listing them."""
    kind, _, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind not in BY_NAME:
        raise LiveError(f"unknown mode {text!r}; use {syntax_list()}")
    if kind == "blur":
        try:
            sigma = float(arg) if arg else blur_sigma
        except ValueError:
            raise LiveError(f"blur strength must be a number, got {arg!r}") from None
        return Mode("blur", blur_sigma=check_blur(sigma))
    if kind in ("image", "video"):
        if not arg:
            raise LiveError(f"mode {kind} needs a path: --mode {BY_NAME[kind].syntax}")
        return Mode(kind, path=arg)
    if kind == "color":
        try:
            rgb = tuple(int(v) for v in arg.replace(" ", "").split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError
        except ValueError:
            raise LiveError(f"color must be r,g,b with values 0..255, got {arg!r}") from None
        return Mode("color", color=rgb)
    return Mode(kind)


__all__ = ["BY_KEY", "BY_NAME", "MODES", "BackgroundMode", "Mode", "help_keys", "mode_help", "parse_mode",
           "syntax_list"]
