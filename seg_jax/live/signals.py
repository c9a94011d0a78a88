"""Stop signals (Ctrl-C, SIGTERM from a service manager or ``docker stop``, SIGHUP from a closed terminal) turned
into a request that the live loop checks between frames, so the output is always finalised.

A signal never interrupts a compile or a frame half-way (raising inside XLA while it compiles can crash the
interpreter); a second signal while the first is pending raises ``KeyboardInterrupt`` at once, for a source that
blocks forever.

Once a stopped run's outputs are final, :func:`ignore_stop_signals` keeps further signals from interrupting the
interpreter's exit (JAX's exit handlers would print a ``KeyboardInterrupt`` traceback).
"""
from __future__ import annotations

import contextlib
import signal
from typing import Iterator, Optional

STOP_SIGNALS = {"SIGINT": "interrupted (Ctrl-C)", "SIGTERM": "stopped (SIGTERM)",
                "SIGHUP": "stopped (SIGHUP: the terminal closed)"}


class StopRequest:
    """``reason`` is None until a stop signal arrives; ``exit_code`` is then 128 + the signal number."""

    def __init__(self):
        self.reason: Optional[str] = None
        self.exit_code = 0

    def __bool__(self) -> bool:
        return self.reason is not None

    def request(self, signum: int) -> None:
        if self.reason is not None:
            raise KeyboardInterrupt
        name = signal.Signals(signum).name
        self.reason = STOP_SIGNALS.get(name, f"stopped ({name})")
        self.exit_code = 128 + int(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator["StopRequest"]:
        """Route the stop signals here for the ``with`` block (main thread only), then restore the handlers."""
        previous = {}
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                previous[signum] = signal.signal(signum, lambda n, _frame: self.request(n))
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def ignore_stop_signals() -> None:
    """Ignore the stop signals from now on (main thread only): the run is over and its outputs are final, so a
    third Ctrl-C during the interpreter's exit has nothing left to stop."""
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, signal.SIG_IGN)
