"""One line for an output that could not be written: what failed, why in words a user knows (the disk is full,
the folder was removed, no permission) and the way out. The cause is read from the error number when there is
one, else from the encoder's last error line, and the folder is looked at (a removed folder is named as such
whatever the encoder said)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from seg_jax.common.write_causes import cause_of


def failure_line(path: Path, detail: str = "", err: Optional[int] = None) -> str:
    """-> 'could not write <path>: <cause>; <way out>' plus whether an earlier file at ``path`` was kept.

    ``detail``: the raw error text (an exception's message or an encoder's last line); ``err``: its errno."""
    path = Path(path)
    if not path.parent.is_dir():
        cause, fix = (f"the folder {path.parent} was removed during the run",
                      "recreate it (or choose another --output) and run again")
    else:
        found = cause_of(detail, err)
        cause, fix = (found[0], f"{found[1]} or choose another --output") if found else \
            (detail.strip() or "the encoder failed", "choose another --output")
    kept = f" (the earlier {path.name} is unchanged)" if path.is_file() else ""
    return f"could not write {path}: {cause}; {fix}{kept}"


__all__ = ["failure_line"]
