"""The live tool's one error type: every problem a user can cause is reported as one line."""


class LiveError(RuntimeError):
    """A problem to report to the user in one line (bad source, output, background, weights...)."""


__all__ = ["LiveError"]
