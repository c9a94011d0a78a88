"""Model registry: ``config.model.name`` -> Flax Linen module."""
from __future__ import annotations

from typing import Any

import flax.linen as nn

from seg_jax.models.convlstm import ConvLSTMCell
from seg_jax.models.mobilenet_v3 import MobileNetV3LargeEncoder
from seg_jax.models.unet import UNet
from seg_jax.models.unet_mobilenet import UNetMobileNet, UNetMobileNetConvLSTM

MODELS: dict[str, type[nn.Module]] = {
    "unet": UNet,
    "mobilenet": UNetMobileNet,
    "convlstm": UNetMobileNetConvLSTM,
}

# The paper's parameter counts (params + BatchNorm statistics, i.e. the Keras count).
PAPER_PARAMETER_COUNTS = {"unet": 31_055_297, "mobilenet": 1_033_545, "convlstm": 2_094_281}


def is_temporal(name: str) -> bool:
    """True for models that take (B, T, H, W, 3) clips and carry a recurrent state."""
    return name == "convlstm"


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model; unknown names and fields fail with the list of valid ones."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    cls = MODELS[name]
    fields = set(cls.__dataclass_fields__) - {"parent", "name"}
    unknown = set(kwargs) - fields
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {sorted(unknown)}; valid options: {sorted(fields)}")
    return cls(**kwargs)


__all__ = ["MODELS", "PAPER_PARAMETER_COUNTS", "ConvLSTMCell", "MobileNetV3LargeEncoder", "UNet",
           "UNetMobileNet", "UNetMobileNetConvLSTM", "create_model", "is_temporal"]
