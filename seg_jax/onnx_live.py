"""``python -m seg_jax.onnx_live``: Background blur / replacement with an exported ONNX model, without JAX.

The code lives in :mod:`seg_jax.onnx.live`."""
import sys

from seg_jax.onnx.live import main

if __name__ == "__main__":
    sys.exit(main())
