"""``python -m seg_jax.live``: real-time background blur / replacement from a webcam, video, images or URL.

The loop is importable: ``seg_jax.live.app.run(LiveOptions(...))``; the flags live in ``seg_jax.live.cli``.
The names below load on first use, so ``python -m seg_jax.live`` can check that OpenCV loads before anything
imports it (:func:`seg_jax.live.__main__.opencv_loads`).
"""

__all__ = ["LiveOptions", "RunStats", "parse_mode", "run"]


def __getattr__(name):
    if name in __all__:
        from seg_jax.live import app
        return getattr(app, name)
    raise AttributeError(f"module 'seg_jax.live' has no attribute {name!r}")
