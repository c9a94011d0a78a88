"""One exit-code rule for every seg_jax command (live tool, training, evaluation, export, ship, converters):

- 0: done; every output is complete.
- 1: the run ended early because its input did (camera unplugged, stream lost, damaged video); what was written is
  complete and says so. (Python's own exit code for an unexpected error, a bug, is also 1: it comes with a
  traceback, which no user-caused problem does.)
- 2: refused or stopped by a problem the user can fix (an option, an input, weights, an output location, a full
  disk, a removed folder): one line naming it and the fix; no earlier file was replaced.
- 128+N: stopped by signal N (130: Ctrl-C, 143: SIGTERM); outputs were finalised.
"""
from __future__ import annotations

import sys
from typing import NoReturn

OK = 0
INPUT_ENDED_EARLY = 1
USER_ERROR = 2


def fail(prog: str, message: str) -> NoReturn:
    """Print ``<prog>: error: <message>`` (one line) to stderr and exit with :data:`USER_ERROR`."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(USER_ERROR)


__all__ = ["INPUT_ENDED_EARLY", "OK", "USER_ERROR", "fail"]
