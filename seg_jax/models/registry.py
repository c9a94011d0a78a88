"""The registry of model specs: what every part of seg_jax needs to know about a model, in one place.

A :class:`ModelSpec` names the Flax module (imported only when a model is built, so CLIs can list their
choices without importing flax), says whether the model is temporal (takes (B, T, H, W, 3) clips and carries a
recurrent state), the multiple its input sides must be, the constructor options it accepts, the paper's
parameter count, and whether its BatchNorm can be folded into its convolutions (:mod:`seg_jax.inference.fused`).
Code asks the spec (``get_spec(name).temporal``); it never compares model names.

Adding a model: write its module under ``seg_jax/models/``, add one ``ModelSpec`` line to ``SPECS`` below, a
config in ``configs/`` and a test.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any

# Options of every model that are not about the architecture: they may differ between training and inference.
RUNTIME_OPTIONS = ("dtype", "depthwise_impl")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    Attributes:
      name: the name used by configs (``config.model.name``), CLIs (``--model``) and weights folders.
      module: ``"package.module:ClassName"`` of the Flax Linen module.
      temporal: True when the module takes clips (B, T, H, W, 3), returns ``(logits, state)`` and has
        ``step(state, frame)`` and ``initial_state(batch, height, width)``.
      size_multiple: input height and width must be multiples of this.
      options: the constructor options a ``config.model`` entry may set for this model.
      paper_parameter_count: the paper's count (params + BatchNorm statistics, the Keras count).
      foldable: the network can run on BatchNorm-folded weights (:mod:`seg_jax.inference.fused`).
      summary: one line for ``--help`` texts.
    """
    name: str
    module: str
    temporal: bool
    size_multiple: int
    options: tuple[str, ...]
    paper_parameter_count: int
    foldable: bool
    summary: str

    def module_class(self) -> type:
        """The Flax module class (imports flax and the model's file)."""
        module_name, class_name = self.module.split(":")
        return getattr(importlib.import_module(module_name), class_name)

    def initial_state(self, batch: int, height: int, width: int, dtype: Any = None) -> Any:
        """A zero recurrent state for ``batch`` streams of frames of ``height`` x ``width`` (a pytree of
        (B, h, w, C) arrays; see the module's ``initial_state``), or ``()`` for a per-frame model."""
        if not self.temporal:
            return ()
        cls = self.module_class()
        return cls.initial_state(batch, height, width) if dtype is None else cls.initial_state(batch, height,
                                                                                               width, dtype)

    def state_shapes(self, batch: int, height: int, width: int) -> list[tuple[int, ...]]:
        """The shapes of the leaves of :meth:`initial_state`, in pytree order (empty for per-frame models)."""
        import jax
        return [tuple(x.shape) for x in jax.tree_util.tree_leaves(self.initial_state(batch, height, width))]

    def input_rank(self) -> int:
        """4 for (B, H, W, 3) images, 5 for (B, T, H, W, 3) clips."""
        return 5 if self.temporal else 4

    def input_shape(self, batch: int, height: int, width: int, time_steps: int = 1) -> tuple[int, ...]:
        """The shape of a network input of ``batch`` images (or clips of ``time_steps`` frames)."""
        if self.temporal:
            return (batch, time_steps, height, width, 3)
        return (batch, height, width, 3)


_MOBILENET_OPTIONS = ("dtype", "depthwise_impl", "encoder_bn_momentum")

SPECS: dict[str, ModelSpec] = {spec.name: spec for spec in (
    ModelSpec("mobilenet", "seg_jax.models.unet_mobilenet:UNetMobileNet", temporal=False, size_multiple=32,
              options=_MOBILENET_OPTIONS, paper_parameter_count=1_033_545, foldable=True,
              summary="U-Net MobileNet: MobileNetV3-Large encoder, residual depthwise decoder (per frame)"),
    ModelSpec("convlstm", "seg_jax.models.unet_mobilenet:UNetMobileNetConvLSTM", temporal=True, size_multiple=32,
              options=_MOBILENET_OPTIONS + ("gate_activation", "residual_cells"), paper_parameter_count=2_094_281,
              foldable=True,
              summary="U-Net MobileNet & ConvLSTM: a ConvLSTM after each decoder merge (temporal)"),
    ModelSpec("unet", "seg_jax.models.unet:UNet", temporal=False, size_multiple=16,
              options=("dtype", "widths"), paper_parameter_count=31_055_297, foldable=False,
              summary="baseline U-Net (Ronneberger et al.), 31M parameters"),
)}

MODEL_NAMES: tuple[str, ...] = tuple(SPECS)


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; an unknown name raises a one-line ``ValueError`` listing the known ones."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}") from None


def temporal_names() -> tuple[str, ...]:
    return tuple(n for n, s in SPECS.items() if s.temporal)


def describe_models() -> str:
    """``name: summary`` lines for help texts."""
    return "; ".join(f"{s.name}: {s.summary}" for s in SPECS.values())


__all__ = ["MODEL_NAMES", "ModelSpec", "RUNTIME_OPTIONS", "SPECS", "describe_models", "get_spec", "temporal_names"]
