"""Weight conversion: Keras MobileNetV3Large -> seg_jax encoder, and ``config.init_from`` loading.

- ``python -m seg_jax.convert.keras_mobilenet --weights FILE.h5 --out DIR`` (see that module)
- ``load_init_variables(path, variables)``: what the trainer calls for ``config.init_from``.
"""
from seg_jax.convert.init_from import load_init_variables

__all__ = ["load_init_variables"]
