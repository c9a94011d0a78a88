"""Jitted image ops for inference: resize, box/Gaussian filters, guided filter, alpha refinement, compositing,
foreground colour estimation."""
from seg_jax.evaluation.metrics_temporal import FlickerMeter, flicker
from seg_jax.ops.composite import (
                                   MODES,
                                   AlphaOptions,
                                   CompositeOptions,
                                   blurred_background,
                                   composite,
                                   refine_alpha,
                                   render,
                                   smooth_alpha,
)
from seg_jax.ops.filters import box_mean, box_sum, gaussian_blur, max_filter, min_filter
from seg_jax.ops.foreground import estimate_foreground
from seg_jax.ops.guided_filter import fast_guided_upsample, guided_filter
from seg_jax.ops.resize import luma, resize, to_float, to_uint8

__all__ = ["MODES", "AlphaOptions", "CompositeOptions", "FlickerMeter", "blurred_background", "box_mean",
           "box_sum", "composite", "estimate_foreground", "fast_guided_upsample", "flicker", "gaussian_blur",
           "guided_filter", "luma", "max_filter", "min_filter", "refine_alpha", "render", "resize", "smooth_alpha",
           "to_float", "to_uint8"]
