"""One line for an output that could not be written: what failed, why in words a user knows (the disk is full,
the folder was removed, no permission) and the way out. The cause is read from the error number when there is
one, else from the encoder's last error line, and the folder is looked at (a removed folder is named as such
whatever the encoder said)."""
from __future__ import annotations

import errno
from pathlib import Path
from typing import Optional

# (error number, words an encoder prints for it, the cause as the user reads it, the way out)
_CAUSES = (
    (errno.ENOSPC, "no space left", "the disk is full", "free some space or choose another --output"),
    (errno.EDQUOT, "quota exceeded", "the disk quota is used up", "free some space or choose another --output"),
    (errno.EFBIG, "file too large", "the file is larger than this filesystem (or the process's file size limit) "
     "allows", "choose another --output on a filesystem that takes large files"),
    (errno.EROFS, "read-only file system", "the filesystem is read-only", "choose another --output"),
    (errno.EACCES, "permission denied", "permission denied", "choose another --output"),
    (errno.ENOENT, "no such file or directory", "its folder is missing", "choose an existing folder for --output"),
)


def failure_line(path: Path, detail: str = "", err: Optional[int] = None) -> str:
    """-> 'could not write <path>: <cause>; <way out>' plus whether an earlier file at ``path`` was kept.

    ``detail``: the raw error text (an exception's message or an encoder's last line); ``err``: its errno."""
    path = Path(path)
    lowered = detail.lower()
    if not path.parent.is_dir():
        cause, fix = (f"the folder {path.parent} was removed during the run",
                      "recreate it (or choose another --output) and run again")
    else:
        found = next(((c, f) for e, words, c, f in _CAUSES if e == err or words in lowered), None)
        cause, fix = found if found else (detail.strip() or "the encoder failed", "choose another --output")
    kept = f" (the earlier {path.name} is unchanged)" if path.is_file() else ""
    return f"could not write {path}: {cause}; {fix}{kept}"


__all__ = ["failure_line"]
