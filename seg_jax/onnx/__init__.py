"""seg_jax models as standard ONNX graphs, and a runner that needs only onnxruntime, numpy and OpenCV.

- :mod:`seg_jax.onnx.export`: Flax weights -> ONNX (BatchNorm folded; ``python -m seg_jax.export --format onnx``);
  needs jax, flax and the ``onnx`` package.
- :mod:`seg_jax.onnx.runtime`: load an exported model with onnxruntime and segment frames; imports no jax.
- ``python -m seg_jax.onnx_live``: blur / replace the background of a video with an exported model, JAX-free.

Importing this package imports nothing heavy (the runner's import path must stay free of jax).
"""
