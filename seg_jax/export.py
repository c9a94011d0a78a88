"""``python -m seg_jax.export``: Export weights as a jax.export artifact or an ONNX graph.

The code lives in :mod:`seg_jax.artifacts.export`."""
import sys

from seg_jax.artifacts.export import main

if __name__ == "__main__":
    sys.exit(main())
