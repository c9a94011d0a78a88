"""One training per workdir: a second one started into the same folder stops at once with one line naming the
first one's process, instead of both failing later with misleading errors and interleaving ``metrics.jsonl``.

The lock is an advisory ``flock`` on ``<workdir>/.training-<process index>.lock`` (one per process of a
multi-host run, which share the workdir): the kernel drops it when the holder exits, even after ``kill -9``, so a
stale file never blocks a rerun. The file holds the holder's pid, for the message. Where ``fcntl`` is missing
(Windows) no lock is taken.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


class WorkdirBusy(OSError):
    """Another training holds the workdir; the message names it and the way out."""


@contextlib.contextmanager
def workdir_lock(workdir: str | os.PathLike, process_index: int = 0) -> Iterator[Path]:
    """Hold ``workdir``'s training lock for the ``with`` block (-> the lock file), or raise :class:`WorkdirBusy`."""
    try:
        import fcntl
    except ImportError:      # not on this platform: no lock
        yield Path(workdir)
        return
    workdir = Path(workdir)
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(workdir / f".training-{process_index}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OSError(f"workdir {workdir} is not writable ({e.strerror or e}); choose another --workdir") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise WorkdirBusy(f"another training is using {workdir} (pid {holder}); wait for it to finish, stop it, "
                              "or choose another --workdir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield workdir / f".training-{process_index}.lock"
    finally:
        os.close(fd)     # closing drops the lock


__all__ = ["WorkdirBusy", "workdir_lock"]
