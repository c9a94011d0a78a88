"""One way to write a file, for every command that writes (the live tool, the ONNX runner, export, evaluate,
report, model card, ship rule, label audit, training's records).

A file is written beside its target (:func:`partial_path`, a hidden sibling) and renamed onto the target only
when complete, so a good earlier file survives a failed, full or interrupted write. Before anything is written
the target is checked (:func:`check_output`): it must not be one of the command's inputs, nor lie inside a
folder the command reads from (a weights folder), nor be a folder, a read-only file or a looping symlink. Every
refusal and every failed write is one :class:`OutputError` line naming the cause and the fix, and says whether
the earlier file was kept. Nothing here imports jax (the ONNX runner uses it).

    with atomic_output("results/x.json", inputs=["a.json"]) as tmp:   # tmp: the sibling Path to fill
        tmp.write_text(...)
    write_json("results/x.json", {"a": 1}, inputs=["a.json"])       # the same for text / JSON / bytes
"""
from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Union

from seg_jax.common.write_causes import cause_of

PathLike = Union[str, os.PathLike]


class OutputError(OSError):
    """An output that must not or cannot be written; the message is one line meant for the user. An ``OSError``,
    so every command's existing ``except OSError`` reports it as its one line."""


def partial_path(path: PathLike) -> Path:
    """Where a file is written before it is complete: a hidden sibling with the same extension (an encoder picks
    its format from it), renamed onto ``path`` only when finished."""
    path = Path(path)
    return path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")


def failure_line(path: PathLike, detail: str = "", err: Optional[int] = None, option: str = "--output") -> str:
    """-> 'could not write <path>: <cause>; <way out>' plus whether an earlier file at ``path`` was kept.

    ``detail``: the raw error text (an exception's message or an encoder's last line); ``err``: its errno;
    ``option``: the flag that names the output, for the way out. The cause is read from the error number when
    there is one, else from the words, and a removed folder is named as such whatever the writer said."""
    path = Path(path)
    if not path.parent.is_dir():
        cause, fix = (f"the folder {path.parent} was removed during the run",
                      f"recreate it (or choose another {option}) and run again")
    else:
        found = cause_of(detail, err)
        cause, fix = (found[0], f"{found[1]} or choose another {option}") if found else \
            (detail.strip() or "the encoder failed", f"choose another {option}")
    kept = f" (the earlier {path.name} is unchanged)" if path.is_file() else ""
    return f"could not write {path}: {cause}; {fix}{kept}"


def _resolved(path: Path, option: str) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):   # Python < 3.13 raises RuntimeError for a symlink loop
        raise OutputError(f"{option} {path} is a symbolic link that loops (or cannot be followed); remove it or "
                          f"choose another {option}") from None


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name one file (through links too); False when either cannot be resolved."""
    try:
        a, b = Path(a), Path(b)
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):
        return False


def check_output(target: PathLike, inputs: Sequence[Optional[PathLike]] = (),
                 protected_dirs: Sequence[Optional[PathLike]] = (), option: str = "--output",
                 file_hint: str = "give a file path") -> Path:
    """Refuse ``target`` before anything is computed: -> the target as a Path, or :class:`OutputError`.

    Refused: one of ``inputs`` (it would be destroyed), a path inside one of ``protected_dirs`` (e.g. the weights
    folder a command reads: its checksums would no longer match), an existing folder, a read-only file (mode bits
    are read: root ignores permissions), a symlink that loops. ``None`` entries are ignored; ``file_hint`` is the
    way out for a folder given where a file goes."""
    target = Path(target)
    resolved = _resolved(target, option)
    if target.is_dir():
        raise OutputError(f"{option} {target} is an existing folder; {file_hint}")
    for source in (s for s in inputs if s):
        if same_file(target, source):
            raise OutputError(f"{option} {target} is also an input of this command ({source}) and would be "
                              f"overwritten; choose another {option}")
    for folder in (d for d in protected_dirs if d):
        try:
            inside = resolved.is_relative_to(Path(folder).resolve())
        except (OSError, RuntimeError):
            inside = False
        if inside and Path(folder).is_dir():
            raise OutputError(f"{option} {target} is inside {folder}, which this command reads (writing there "
                              f"would spoil it); choose another {option} outside it")
    if target.is_file() and not stat.S_IMODE(target.stat().st_mode) & 0o222:
        raise OutputError(f"{option} {target} is read-only; make it writable (chmod u+w) or choose another {option}")
    return target


def check_folder(folder: PathLike, what: str, option: str = "--output") -> None:
    """Create ``folder`` (and parents) and prove a file can be written there, or one :class:`OutputError` line."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".seg_jax-write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"cannot write {what} in {folder}: {e.strerror or e}; choose another {option}") from None


@contextlib.contextmanager
def atomic_output(target: PathLike, inputs: Sequence[Optional[PathLike]] = (),
                  protected_dirs: Sequence[Optional[PathLike]] = (), option: str = "--output",
                  make_folder: bool = True) -> Iterator[Path]:
    """Check ``target`` (:func:`check_output`), create its folder, and yield the sibling Path to write; when the
    ``with`` block ends without an exception the sibling is renamed onto ``target``. On any exception (a full
    disk, Ctrl-C) the sibling is removed and the earlier ``target`` stays; an ``OSError`` becomes one
    :class:`OutputError` line (:func:`failure_line`), anything else propagates unchanged. ``make_folder=False``:
    the folder was made (and probed) before, e.g. once per run; a folder removed since is then named as such."""
    target = check_output(target, inputs, protected_dirs, option)
    if make_folder:
        check_folder(target.parent, target.name, option)
    tmp = partial_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OutputError:          # already one line (a nested check): not wrapped again
        _discard(tmp)
        raise
    except OSError as e:
        _discard(tmp)
        raise OutputError(failure_line(target, e.strerror or str(e), e.errno, option)) from None
    except BaseException:
        _discard(tmp)
        raise


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def write_bytes(target: PathLike, data: bytes, **checks: Any) -> Path:
    """Write ``data`` to ``target`` through :func:`atomic_output` (``checks``: its inputs / protected_dirs /
    option); -> the target."""
    with atomic_output(target, **checks) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(target)


def write_text(target: PathLike, text: str, **checks: Any) -> Path:
    """Write ``text`` (UTF-8) to ``target`` through :func:`atomic_output`; -> the target."""
    return write_bytes(target, text.encode("utf-8"), **checks)


def write_json(target: PathLike, obj: Any, indent: int = 2, **checks: Any) -> Path:
    """Write ``obj`` as indented JSON plus a newline to ``target`` through :func:`atomic_output`; -> the target.
    (The JSON text is made before anything is opened: an unserialisable value leaves the earlier file alone.)"""
    return write_text(target, json.dumps(obj, indent=indent, default=str) + "\n", **checks)


__all__ = ["OutputError", "atomic_output", "check_folder", "check_output", "failure_line", "partial_path",
           "same_file", "write_bytes", "write_json", "write_text"]
