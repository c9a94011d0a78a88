"""Moved to :mod:`seg_jax.fused` (the library's BatchNorm-folded inference path); re-exported for the bench."""
from seg_jax.fused import Folded, fold_batchnorm, folded_to_device, fused_apply, stem_conv  # noqa: F401

__all__ = ["Folded", "fold_batchnorm", "folded_to_device", "fused_apply", "stem_conv"]
