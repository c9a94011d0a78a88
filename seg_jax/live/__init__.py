"""``python -m seg_jax.live``: real-time background blur / replacement from a webcam, video, images or URL.

The loop is importable: ``seg_jax.live.app.run(LiveOptions(...))``; the flags live in ``seg_jax.live.cli``.
"""
from seg_jax.live.app import LiveOptions, RunStats, parse_mode, run

__all__ = ["LiveOptions", "RunStats", "parse_mode", "run"]
