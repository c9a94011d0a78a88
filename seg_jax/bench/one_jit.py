"""The benchmark's variants of the streaming step and of the fused network (not used by inference).

:func:`one_jit_step`: the whole streaming step as one jit (slower on CPU than the separately jitted pieces of
:class:`seg_jax.inference.streaming.StreamingStep`; the e2e section's '-onejit' rows measure both forms).
:class:`AblationOps` / :func:`ablation_apply`: the fused network with single speed-ups undone, for the
ablation section (1x1 convolutions as convolutions, the stem as XLA's convolution, the head after the last
upsample).
"""
from __future__ import annotations

import functools
from typing import Any

import jax

from seg_jax.inference import streaming
from seg_jax.inference.fused import ACTIVATION_FNS, JaxOps, fused_apply, stem_conv
from seg_jax.inference.plan import Step, mobilenet_plan


@functools.lru_cache(maxsize=None)
def _one_jit(model, model_name: str, input_size: tuple[int, int], refine, fast: bool, hold):
    net = streaming.network_stage(fast, hold)

    def step(params, state, frame):
        _, small = streaming.preprocess(frame, input_size)
        state, prob = net(model, model_name, params, state, small)
        return state, streaming.postprocess(prob, small, frame, refine)
    return jax.jit(step, donate_argnums=(1,))


def one_jit_step(st: streaming.StreamingStep, state: Any, frame) -> tuple[Any, jax.Array]:
    """``st(state, frame)`` computed as one jit over the whole step (same result; ``state`` is donated)."""
    fn = _one_jit(st.model, st.model_name, st.input_size, st.refine, st.fast, st.stabilise)
    return fn(st.params, state, frame)


class AblationOps(JaxOps):
    """:class:`JaxOps` with ``pointwise_as_dot`` (False: 1x1 convolutions as XLA convolutions) and
    ``stem_shift_add`` (False: the stem as XLA's convolution) switchable."""
    pointwise_as_dot = True
    stem_shift_add = True

    def pointwise(self, step: Step, x: jax.Array) -> jax.Array:
        if self.pointwise_as_dot:
            return super().pointwise(step, x)
        w = self.w[step.param]
        y = jax.lax.conv_general_dilated(x.astype(self.dot_dtype), w["kernel"].astype(self.dot_dtype), (1, 1),
                                         "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                         preferred_element_type=x.dtype)
        return ACTIVATION_FNS[step.act](y + w["bias"].astype(x.dtype))

    def conv(self, step: Step, x: jax.Array) -> jax.Array:
        if self.stem_shift_add:
            return super().conv(step, x)
        w = self.w[step.param]
        y = stem_conv(x, w["kernel"].astype(self.dtype), "grouped", step.stride)
        return ACTIVATION_FNS[step.act](y + w["bias"].astype(self.dtype))


def ablation_apply(folded, images: jax.Array, *, pointwise_as_dot: bool = True, stem_shift_add: bool = True,
                   head_before_upsample: bool = True, dot_dtype: Any = None) -> jax.Array:
    """The per-frame fused network (N, H, W, 3) in [0, 1] -> logits (N, H, W, 1) with the named speed-ups
    switched off (all on: :func:`seg_jax.inference.fused.fused_apply`)."""
    ops = type("Ablation", (AblationOps,), {"pointwise_as_dot": pointwise_as_dot, "stem_shift_add": stem_shift_add})
    plan = mobilenet_plan(head_first=head_before_upsample)
    return fused_apply(folded, images, plan=plan, dot_dtype=dot_dtype, ops=ops)


__all__ = ["AblationOps", "ablation_apply", "one_jit_step"]
