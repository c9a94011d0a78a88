"""Why a write failed, in words a user knows: the error number (or the words an encoder or storage library prints
for it) -> the cause and the way out. One table for every writer (live outputs, checkpoints)."""
from __future__ import annotations

import errno
from typing import Optional

# (error number, the words libraries print for it, the cause as the user reads it, the way out)
CAUSES = (
    (errno.ENOSPC, "no space left", "the disk is full", "free some space"),
    (errno.EDQUOT, "quota exceeded", "the disk quota is used up", "free some space"),
    (errno.EFBIG, "file too large", "a file is larger than this filesystem (or the process's file size limit) "
     "allows", "use a filesystem that takes large files"),
    (errno.EROFS, "read-only file system", "the filesystem is read-only", "use a writable place"),
    (errno.EACCES, "permission denied", "permission denied", "use a writable place"),
    (errno.ENOENT, "no such file or directory", "its folder is missing", "use an existing folder"),
)


def cause_of(detail: str = "", err: Optional[int] = None) -> Optional[tuple[str, str]]:
    """-> (cause, way out) for an error number or an error text that names one, else None."""
    lowered = detail.lower()
    return next(((cause, fix) for e, words, cause, fix in CAUSES if e == err or words in lowered), None)


__all__ = ["CAUSES", "cause_of"]
