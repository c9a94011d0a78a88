"""Can an OpenCV window open here, and how big is the screen? Asked before anything is loaded or written.

OpenCV's GUI build (``opencv-python``) draws its windows with Qt on X11. Qt does not fail politely: with no X server
at ``$DISPLAY`` (or under Wayland without XWayland) it aborts the whole process. So the display is probed first:
the environment, then a connection to the X server (libX11 through ctypes, milliseconds), then a throw-away window
opened by OpenCV in a child process (about a second; an abort there kills only the child). Each failure is one line
naming the cause and the two ways out (a desktop, or ``--output``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import subprocess
import sys
from typing import Optional

import cv2

WAYS_OUT = "run it on a desktop, or pass --output FILE (e.g. --output out.mp4) to write the result instead"
HEADLESS_FIX = ("pip uninstall -y opencv-python-headless && pip install --force-reinstall 'opencv-python>=4.10' "
                "(the GUI build of OpenCV)")


def opencv_has_gui() -> bool:
    """Whether this OpenCV build can open windows (opencv-python-headless cannot)."""
    info = cv2.getBuildInformation()
    at = info.find("GUI:")
    return at < 0 or "NONE" not in info[at:at + 60].split("\n")[0]


@functools.lru_cache(maxsize=1)
def _libx11():
    name = ctypes.util.find_library("X11")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.XOpenDisplay.restype = ctypes.c_void_p
    lib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    lib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    for fn in (lib.XDefaultScreen,):
        fn.argtypes = [ctypes.c_void_p]
    for fn in (lib.XDisplayWidth, lib.XDisplayHeight):
        fn.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def x_screen_size(display: str) -> Optional[tuple[int, int]]:
    """``(height, width)`` of the default screen of the X server at ``display``; None when none answers there
    (or libX11 is missing, in which case the caller cannot tell and the child-process probe decides)."""
    lib = _libx11()
    if lib is None:
        return None
    dpy = lib.XOpenDisplay(display.encode())
    if not dpy:
        return None
    try:
        screen = lib.XDefaultScreen(dpy)
        return int(lib.XDisplayHeight(dpy, screen)), int(lib.XDisplayWidth(dpy, screen))
    finally:
        lib.XCloseDisplay(dpy)


_PROBE = "import cv2; cv2.namedWindow('seg_jax probe', cv2.WINDOW_NORMAL); cv2.waitKey(1); cv2.destroyAllWindows()"


@functools.lru_cache(maxsize=None)
def _window_opens(display: Optional[str], timeout: float = 30.0) -> str:
    """'' when OpenCV opened (and closed) a window in a child process on ``display`` (the ``$DISPLAY`` it was
    asked for, which is also the cache's key), else the child's last error line."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"opening a test window took over {timeout:.0f} s"
    if done.returncode == 0:
        return ""
    lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit code {done.returncode}"


def display_problem(probe: bool = True) -> str:
    """One line on why no OpenCV window can open here (naming the fix), or '' when one can.

    ``probe``: also open a throw-away window in a child process (catches a GUI backend that cannot start even
    though an X server answers); cached per ``$DISPLAY``, so it costs its second once per process.
    """
    if not opencv_has_gui():
        return f"this OpenCV has no GUI (opencv-python-headless is installed); for a window: {HEADLESS_FIX}"
    if sys.platform.startswith("linux"):
        x, wayland = os.environ.get("DISPLAY"), os.environ.get("WAYLAND_DISPLAY")
        if not x and wayland:
            return ("Wayland without XWayland (DISPLAY is unset): OpenCV's window needs an X server; enable "
                    f"XWayland and set DISPLAY, or pass --output FILE to write the result instead")
        if not x:
            return f"no display here (DISPLAY and WAYLAND_DISPLAY are unset); {WAYS_OUT}"
        if _libx11() is not None and x_screen_size(x) is None:
            return f"no X server answers at DISPLAY={x}; start one or fix DISPLAY, or pass --output FILE instead"
    if probe:
        why = _window_opens(os.environ.get("DISPLAY"))
        if why:
            return f"OpenCV's window could not start ({why}); {WAYS_OUT}"
    return ""


def screen_size() -> Optional[tuple[int, int]]:
    """``(height, width)`` of the screen the window opens on, when it can be asked (X11); else None."""
    x = os.environ.get("DISPLAY")
    return x_screen_size(x) if x and sys.platform.startswith("linux") else None


__all__ = ["HEADLESS_FIX", "WAYS_OUT", "display_problem", "opencv_has_gui", "screen_size", "x_screen_size"]
