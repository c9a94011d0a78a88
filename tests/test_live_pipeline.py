"""The reader / writer threads of seg_jax.live.pipeline on their own: order, bounds, errors handed over in order."""
import threading
import time

import numpy as np
import pytest

from seg_jax.live.pipeline import Reader, Writer


class ListSource:
    """A FrameSource stand-in: ``frames`` in order, then None; ``fail_at``: raise there instead."""
    end_reason = None

    def __init__(self, n, fail_at=None, error=RuntimeError("camera gone")):
        self.n, self.i, self.fail_at, self.error = n, 0, fail_at, error
        self.reads = 0

    def read(self):
        self.reads += 1
        if self.fail_at is not None and self.i == self.fail_at:
            raise self.error
        if self.i >= self.n:
            return None
        self.i += 1
        return np.full((2, 2, 3), self.i - 1, np.uint8)


@pytest.mark.parametrize("threaded", [True, False])
def test_reader_keeps_order_stops_at_the_limit_and_hands_errors_over_after_the_frames_before(threaded):
    reader = Reader(ListSource(10), threaded=threaded, limit=6)
    got = []
    while (item := reader.get()) is not None:
        got.append((item.index, int(item.frame[0, 0, 0])))
    assert got == [(i, i) for i in range(6)]
    reader.close()
    reader = Reader(ListSource(10, fail_at=3, error=KeyboardInterrupt()), threaded=threaded)
    assert [reader.get().index for _ in range(3)] == [0, 1, 2]
    with pytest.raises(KeyboardInterrupt):
        reader.get()
    assert reader.get() is None
    reader.close()


def test_reader_reads_ahead_only_as_far_as_its_queue():
    source = ListSource(100)
    reader = Reader(source, depth=1)
    time.sleep(0.3)
    assert source.reads <= 3            # one queued, one waiting to be queued, nothing more
    assert reader.get(lambda: False).index == 0
    reader.close()


def test_reader_get_returns_when_asked_to_stop():
    class Blocking(ListSource):
        def read(self):
            time.sleep(0.5)
            return super().read()
    reader = Reader(Blocking(5))
    t0 = time.perf_counter()
    assert reader.get(lambda: True) is None and time.perf_counter() - t0 < 0.3
    reader.close()


def test_writer_writes_in_order_in_its_thread_and_close_drains_and_raises():
    seen, threads = [], set()

    def write(item):
        time.sleep(0.01)
        seen.append(item)
        threads.add(threading.current_thread().name)
    writer = Writer(write, depth=2)
    for i in range(10):
        writer.put(i)
    writer.close()
    assert seen == list(range(10)) and threads == {"seg_jax-writer"}

    def failing(item):
        if item == 2:
            raise OSError("disk full")
    writer = Writer(failing)
    with pytest.raises(OSError, match="disk full"):
        for i in range(50):
            writer.put(i)
            time.sleep(0.005)
        writer.close()
