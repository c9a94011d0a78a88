"""One command-line parser behaviour for every seg_jax command: a bad flag is one line and exit code 2."""
from __future__ import annotations

import argparse

from seg_jax.common.exit_codes import USER_ERROR


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad or missing flag is one line on stderr (``<prog>: error: <what> (see --help)``) and exit
    code 2 instead of the usage block (which hides the one line that matters)."""

    def error(self, message: str):
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


__all__ = ["OneLineParser"]
