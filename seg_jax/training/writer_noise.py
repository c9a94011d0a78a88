"""Keep a failing background writer to one line: while Orbax saves a checkpoint, its writer threads and asyncio
tasks report a failure (a full disk) once per array, each with a traceback (hundreds on a real model), before the
save itself raises. :func:`held_writer_noise` holds those reports back for the duration of a save, so the caller's
one-line error (naming the cause and the way out) is what the user reads; a save that succeeds prints nothing
either way.

Held: tracebacks that threads and native callbacks report through ``threading.excepthook``,
``sys.unraisablehook`` or ``sys.excepthook`` (asyncio's
"Event loop is closed" from TensorStore's completion callbacks) and the records of the ``asyncio`` and ``absl``
loggers (Orbax's thread errors). Nothing else is touched, and all is restored on exit. The writer's tasks whose
failure nobody read report it when they are collected, often at exit: after a failed save,
:func:`drop_unread_task_errors` keeps those asyncio records back for the rest of the process.
"""
from __future__ import annotations

import contextlib
import gc
import logging
import sys
import threading
from typing import Iterator

_LOGGERS = ("asyncio", "absl")


class _Hold(logging.Filter):
    def __init__(self):
        super().__init__()
        self.held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        self.held += 1
        return False


@contextlib.contextmanager
def held_writer_noise() -> Iterator[_Hold]:
    """Within the block, background-writer reports are counted (``.held``) instead of printed."""
    hold = _Hold()
    hooks = sys.excepthook, sys.unraisablehook, threading.excepthook
    loggers = [logging.getLogger(name) for name in _LOGGERS]

    def quiet_hook(*_):
        hold.held += 1

    sys.excepthook = sys.unraisablehook = threading.excepthook = quiet_hook
    for logger in loggers:
        logger.addFilter(hold)
    try:
        yield hold
    finally:
        gc.collect()           # finished tasks whose errors nobody read report now, while held
        sys.excepthook, sys.unraisablehook, threading.excepthook = hooks
        for logger in loggers:
            logger.removeFilter(hold)


class _UnreadTaskErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # asyncio's message is "Task exception was never retrieved" followed by a line naming the future
        return not str(record.msg).split("\n", 1)[0].endswith("exception was never retrieved")


def drop_unread_task_errors() -> None:
    """From now on, asyncio's "Task/Future exception was never retrieved" records are not printed (a failed save
    has been reported in one line; its tasks would repeat it, one traceback per array). Installed once."""
    logger = logging.getLogger("asyncio")
    if not any(isinstance(f, _UnreadTaskErrors) for f in logger.filters):
        logger.addFilter(_UnreadTaskErrors())


__all__ = ["drop_unread_task_errors", "held_writer_noise"]
