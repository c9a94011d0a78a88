"""The live tool's window: opened at the frame's size (capped to the screen), resizable with the aspect ratio
kept, the overlay drawn at the size the window shows, so its text stays legible whatever the window's size.

:class:`WindowSink` takes (H, W, 3) uint8 RGB frames like the other sinks; :meth:`WindowSink.show` adds the
overlay's status lines (top left), one line of key hints (bottom left) or, after ``h``, the full key list.
"""
from __future__ import annotations

from typing import Optional, Sequence

import cv2
import numpy as np

from seg_jax.live.display import display_problem, screen_size
from seg_jax.live.modes import MODES, OTHER_KEYS
from seg_jax.live.sinks import FrameSink, SinkError

# Share of the screen a window may take when it opens (title bar and panels need the rest).
SCREEN_SHARE = 0.9
FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_PX = cv2.getTextSize("Ag", FONT, 1.0, 1)[0][1]    # text height in pixels at scale 1


def key_hint_line() -> str:
    """The one line of key hints always shown at the bottom of the window."""
    modes = " ".join(m.key for m in MODES)
    return f"h all keys   q quit   {modes} mode   +/- blur   t threshold"


def key_list_lines() -> list[str]:
    """The full key list, one key a line (``h`` toggles it in the window)."""
    return [f"{m.key}   {m.name}: {m.help}" for m in MODES] + [f"{k}   {what}" for k, what in OTHER_KEYS]


def opening_size(frame_hw: tuple[int, int], screen_hw: Optional[tuple[int, int]]) -> tuple[int, int]:
    """(h, w) of a new window: the frame's size, scaled down (aspect kept) to fit ``SCREEN_SHARE`` of the
    screen when it is larger."""
    h, w = frame_hw
    if screen_hw is None:
        return h, w
    scale = min(1.0, SCREEN_SHARE * screen_hw[0] / h, SCREEN_SHARE * screen_hw[1] / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def text_scale(shown_h: int) -> float:
    """Font scale giving text about 1/24 of the shown height, between 12 and 40 pixels tall."""
    return min(40.0, max(12.0, shown_h / 24.0)) / _FONT_PX


def block_height(n_lines: int, scale: float) -> int:
    """Pixels a block of ``n_lines`` takes at ``scale`` (lines and padding)."""
    line_h = int(round(_FONT_PX * scale * 1.6))
    return line_h * n_lines + 2 * max(4, line_h // 4)


def draw_block(image: np.ndarray, lines: Sequence[str], scale: float, *, bottom: bool = False,
               max_height: Optional[int] = None) -> None:
    """Draw ``lines`` in place (BGR or RGB (H, W, 3) uint8) on a darkened box at the top-left corner (or the
    bottom-left one); a line too wide for the image, or a block taller than ``max_height``, is drawn smaller
    rather than cut."""
    if not lines:
        return
    h, w = image.shape[:2]
    limit = h if max_height is None else max_height
    while scale > 0.2 and block_height(len(lines), scale) > limit:
        scale *= 0.9
    line_h = int(round(_FONT_PX * scale * 1.6))
    pad = max(4, line_h // 4)
    scales = [min(scale, scale * (w - 2 * pad) / max(1, cv2.getTextSize(t, FONT, scale, 1)[0][0])) for t in lines]
    box_w = min(w, 2 * pad + max(cv2.getTextSize(t, FONT, s, 1)[0][0] for t, s in zip(lines, scales)))
    box_h = min(h, 2 * pad + line_h * len(lines))
    y0 = h - box_h if bottom else 0
    region = image[y0:y0 + box_h, :box_w]
    region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)
    thick = max(1, int(round(scale * 1.5)))
    for i, (text, s) in enumerate(zip(lines, scales)):
        y = y0 + pad + line_h * i + int(round(_FONT_PX * scale * 1.2))
        cv2.putText(image, text, (pad, y), FONT, s, (255, 255, 255), thick, cv2.LINE_AA)


class WindowSink(FrameSink):
    """An OpenCV window (Qt on Linux): :meth:`show` a frame with its overlay; :meth:`poll_key` returns the key
    pressed (or -1); ``closed_by_user`` once the window was closed; ``help_shown`` toggles the full key list."""

    def __init__(self, title: str = "seg_jax live"):
        problem = display_problem()
        if problem:
            raise SinkError(f"cannot show a window: {problem}")
        self.title = title
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)
        self.description = "window"
        self.closed_by_user = False
        self.help_shown = False
        self._opened_at: Optional[tuple[int, int]] = None

    def _shown_size(self, frame_hw: tuple[int, int]) -> tuple[int, int]:
        """(h, w) the frame is shown at now: the opening size first, then the window's image area with the
        frame's aspect ratio (a user's resize)."""
        if self._opened_at is None:
            self._opened_at = opening_size(frame_hw, screen_size())
            cv2.resizeWindow(self.title, self._opened_at[1], self._opened_at[0])
            return self._opened_at
        try:
            _, _, rw, rh = cv2.getWindowImageRect(self.title)
        except cv2.error:
            return self._opened_at
        if rw < 16 or rh < 16:
            return self._opened_at
        scale = min(rh / frame_hw[0], rw / frame_hw[1])
        return max(1, round(frame_hw[0] * scale)), max(1, round(frame_hw[1] * scale))

    def show(self, frame: np.ndarray, status: Sequence[str] = ()) -> np.ndarray:
        """Show (H, W, 3) uint8 RGB ``frame`` with ``status`` lines and the key hints; -> the BGR image shown."""
        sh, sw = self._shown_size(frame.shape[:2])
        bgr = np.ascontiguousarray(frame[..., ::-1])
        if (sh, sw) != frame.shape[:2]:
            bgr = cv2.resize(bgr, (sw, sh), interpolation=cv2.INTER_AREA if sh < frame.shape[0] else cv2.INTER_LINEAR)
        scale = text_scale(sh)
        draw_block(bgr, list(status) + (key_list_lines() if self.help_shown else []), scale,
                   max_height=sh - block_height(1, scale * 0.85))
        draw_block(bgr, [key_hint_line()], scale * 0.85, bottom=True)
        cv2.imshow(self.title, bgr)
        return bgr

    def write(self, frame: np.ndarray) -> None:
        self.show(frame)

    def poll_key(self) -> int:
        key = cv2.waitKey(1)
        try:
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                self.closed_by_user = True
        except cv2.error:
            self.closed_by_user = True
        return key & 0xFF if key >= 0 else -1

    def close(self, interrupted: bool = False) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
        except cv2.error:
            pass


__all__ = ["WindowSink", "block_height", "draw_block", "key_hint_line", "key_list_lines", "opening_size", "text_scale"]
