"""Reading, segmenting and writing overlap: a reader thread decodes the next frames and a writer thread encodes
the previous outputs while the main thread runs the network, so a file run costs about its slowest stage, not
the sum of the three (decoding, XLA and the ffmpeg pipe all release the GIL).

Both queues are bounded (a slow stage makes the others wait instead of filling memory) and first-in first-out
with one thread on each end, so frames never reorder and each output is written with the frame it was
composited from. ``threaded=False`` runs the same stages one after the other in the calling thread (for
comparison and debugging). An exception in a thread (a camera raising, ``KeyboardInterrupt`` from a test's fake
source, a sink failing) is handed to the main thread in order and raised there.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Any, Callable, Optional

import numpy as np

_END = object()


@dataclasses.dataclass
class Captured:
    """A frame as it left the source: ``t`` is ``time.perf_counter()`` right after ``read()`` returned;
    ``name``: the output stem of an image of a folder (the source's ``current_name``; None otherwise)."""
    index: int
    frame: np.ndarray
    t: float
    name: Optional[str] = None
    pts_ms: Optional[float] = None   # a video file's timestamp of the frame (the source's ``current_pts_ms``)


@dataclasses.dataclass
class _Failure:
    error: BaseException


def _put(q: queue.Queue, item: Any, halt: threading.Event) -> bool:
    """Put unless ``halt`` is set first; -> whether it was put."""
    while not halt.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False


class Reader:
    """Frames of ``source`` (a :class:`seg_jax.live.sources.FrameSource`) as :class:`Captured`, at most ``limit``.

    ``get(should_stop)`` -> the next one, or None at the end of the source or when ``should_stop()`` turns true.
    """

    def __init__(self, source: Any, *, threaded: bool = True, depth: int = 1, limit: Optional[int] = None):
        self.source, self.threaded, self.limit = source, threaded, limit
        self._count = 0
        self._done = False
        self._halt = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._thread: Optional[threading.Thread] = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="seg_jax-reader", daemon=True)
            self._thread.start()

    def _read(self) -> Optional[Captured]:
        if self.limit is not None and self._count >= self.limit:
            return None
        frame = self.source.read()
        if frame is None:
            return None
        self._count += 1
        return Captured(self._count - 1, frame, time.perf_counter(), getattr(self.source, "current_name", None),
                        getattr(self.source, "current_pts_ms", None))

    def _run(self) -> None:
        try:
            while not self._halt.is_set():
                item = self._read()
                if not _put(self._queue, _END if item is None else item, self._halt) or item is None:
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the main thread, raised there
            _put(self._queue, _Failure(e), self._halt)

    def get(self, should_stop: Callable[[], bool] = lambda: False) -> Optional[Captured]:
        if self._done:
            return None
        if not self.threaded:
            try:
                item = self._read()
            except BaseException:
                self._done = True
                raise
        else:
            while True:
                if should_stop():
                    return None
                try:
                    item = self._queue.get(timeout=0.05)
                    break
                except queue.Empty:
                    continue
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        if item is None or item is _END:
            self._done = True
            return None
        return item

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading ahead and wait for the thread (a source blocked in ``read()`` is left after ``timeout``)."""
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout)


class Writer:
    """Calls ``write(item)`` for each ``put(item)``, in order, in a thread (or at once with ``threaded=False``).

    ``put`` blocks while ``depth`` items wait; it and ``close`` raise the first error ``write`` raised.
    ``close()`` writes everything still queued before it returns (the outputs are then complete).
    """

    def __init__(self, write: Callable[[Any], None], *, threaded: bool = True, depth: int = 2):
        self.write, self.threaded = write, threaded
        self._error: Optional[BaseException] = None
        self._halt = threading.Event()
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self._thread: Optional[threading.Thread] = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="seg_jax-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self.write(item)
                except BaseException as e:  # noqa: BLE001 - raised in the main thread by put/close
                    self._error = e

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def put(self, item: Any) -> None:
        self._raise()
        if not self.threaded:
            self.write(item)
            return
        _put(self._queue, item, self._halt)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None
        self._raise()


__all__ = ["Captured", "Reader", "Writer"]
