"""The models: the registry of specs (light: no flax import) and, on first use, the Flax Linen modules.

``from seg_jax.models import get_spec, MODEL_NAMES`` costs nothing; ``create_model``, ``build_model`` and the
module classes import flax when first asked for (see :mod:`seg_jax.models.build`).
"""
from __future__ import annotations

import importlib
from typing import Any

from seg_jax.models.registry import MODEL_NAMES, SPECS, ModelSpec, get_spec

_LAZY = {
    "create_model": "seg_jax.models.build", "build_model": "seg_jax.models.build",
    "ConvLSTMCell": "seg_jax.models.convlstm", "MobileNetV3LargeEncoder": "seg_jax.models.mobilenet_v3",
    "UNet": "seg_jax.models.unet", "UNetMobileNet": "seg_jax.models.unet_mobilenet",
    "UNetMobileNetConvLSTM": "seg_jax.models.unet_mobilenet",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seg_jax.models' has no attribute {name!r}")


__all__ = ["MODEL_NAMES", "SPECS", "ModelSpec", "get_spec", *_LAZY]
