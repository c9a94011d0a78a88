"""``Segmenter``: the notebook-friendly API. One frame in (RGB uint8), one soft alpha out.

    from seg_jax import Segmenter
    seg = Segmenter("convlstm")          # shipped weights in seg_jax/weights/convlstm/
    for frame in frames:                 # (H, W, 3) uint8 RGB, any size
        alpha = seg.step(frame)          # (H, W) float32 in [0, 1]
    seg.reset()                          # before an unrelated clip / image

The inference size defaults to the weights manifest's ``input_size`` (else 256x256), adapted to the frame's
aspect ratio (e.g. 160x288 for 16:9, 192x256 for 4:3; ``keep_aspect=False`` always uses the base size). A
fixed ``input_size=(h, w)`` overrides it. Frames of a new resolution are handled (compiled, and the stream
state restarts).

A ``Segmenter`` is one stream: the recurrent state and the stabiliser's hold carry from each frame to the next, so
frames of two interleaved streams would mix; use one ``Segmenter`` per stream, or call
:meth:`Segmenter.reset` between them. RGBA frames: transparent pixels are not person (:func:`split_opacity`).
"""
from __future__ import annotations

import functools
import os
from typing import Any, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from seg_jax.artifacts.model_io import load_weights
from seg_jax.artifacts.settle import check_settle_steps, manifest_settle_steps
from seg_jax.inference.compiled_sizes import DEFAULT_LIMIT, CompiledSizes, drop_compiled
from seg_jax.inference.fused import resolve_dot_dtype
from seg_jax.inference.sizes import (
    DEFAULT_INPUT_SIZE,
    SizeLike,
    check_input_size,
    choose_input_size,
    parse_size,
)
from seg_jax.inference.streaming import DEFAULT_GUIDED_RADIUS, Refine, StreamingStep, fast_params
from seg_jax.models import get_spec
from seg_jax.models.build import build_model, dummy_input
from seg_jax.ops.stabilise import Stabilise

# The stream's default hold of the previous alpha where the image is still (swept by research.tune_stabilise on
# DAVIS clips outside the test split, results/tuning/stabilise.json; why this one:
# results/ablations/stabilise_default/).
DEFAULT_STABILISE = Stabilise(strength=0.9, motion=0.2, radius=2)


@functools.lru_cache(maxsize=None)
def random_variables(model_name: str, seed: int = 0, bn_jitter: bool = False) -> dict:
    """Untrained variables for demos, tests and benchmarks before weights exist (cached; instant).

    Shapes come from ``jax.eval_shape`` (no slow init); kernels are N(0, 1/fan_in). BatchNorm is the identity
    (scale/var 1, mean/bias 0) unless ``bn_jitter``: then scale/var ~ U(0.8, 1.2) and mean/bias ~ N(0, 0.05),
    so that folding BatchNorm into the convolutions is not the identity (benchmarks, folding tests).
    Not a training initialisation, just finite, well-scaled numbers.
    """
    model = build_model({"name": model_name})
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_input(model_name, 1, 64, 64), train=False))
    rng = np.random.default_rng(seed)

    def fill(path, leaf):
        name = str(getattr(path[-1], "key", path[-1]))
        if name in ("var", "scale"):
            return (jnp.asarray(rng.uniform(0.8, 1.2, leaf.shape), leaf.dtype) if bn_jitter
                    else jnp.ones(leaf.shape, leaf.dtype))
        if name in ("mean", "bias") or len(leaf.shape) < 2:
            return (jnp.asarray(rng.normal(0.0, 0.05, leaf.shape), leaf.dtype) if bn_jitter
                    else jnp.zeros(leaf.shape, leaf.dtype))
        depthwise = len(leaf.shape) == 4 and leaf.shape[2] == 1
        fan_in = int(np.prod(leaf.shape[:2] if depthwise else leaf.shape[:-1]))
        return jnp.asarray(rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), leaf.shape), leaf.dtype)

    return dict(jax.tree_util.tree_map_with_path(fill, dict(shapes)))


# Frames larger than this per side are refused: the full-resolution refinement holds a few float32 copies of
# the frame (a 10000x10000 still peaks at several GiB); downscale such images first.
MAX_FRAME_SIDE = 8192


def split_opacity(frame: Any) -> tuple[Any, Optional[np.ndarray]]:
    """An RGBA frame with transparent pixels -> (its RGB composited on mid-grey, opacity (H, W) float32 in
    [0, 1]); any other frame -> (frame, None). The rule for transparency: a transparent pixel is not person (the
    alpha is multiplied by the opacity), and what it hides does not reach the network (grey is neutral to it)."""
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[-1] != 4 or a.size == 0:
        return frame, None
    opacity = as_rgb_uint8(a[..., 3])[..., 0]
    if opacity.min() == 255:
        return a[..., :3], None
    weight = opacity.astype(np.float32)[..., None] / 255.0
    rgb = as_rgb_uint8(a[..., :3]).astype(np.float32) * weight + 128.0 * (1.0 - weight)
    return rgb.round().astype(np.uint8), weight[..., 0]


def as_rgb_uint8(frame: Any) -> np.ndarray:
    """A frame -> (H, W, 3) uint8 RGB, by one rule per dtype.

    Shapes: (H, W, 3) RGB (the contract), (H, W) or (H, W, 1) grey, (H, W, 4) RGBA (alpha dropped here; the
    Segmenter applies :func:`split_opacity` first).
    Values: uint8 as 0..255; uint16 as 0..65535 (scaled to 0..255); other integers as 0..255 (clipped); bool as
    0/255; float as 0..1 (clipped, NaN -> 0), whatever its largest value. Empty frames, other dtypes and sides
    over :data:`MAX_FRAME_SIDE` raise ValueError naming the problem.
    """
    a = np.asarray(frame)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[-1] not in (1, 3, 4):
        raise ValueError(f"frame must be (H, W, 3) RGB (or grey / RGBA), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"frame is empty (shape {a.shape}); pass an image with at least one pixel")
    if max(a.shape[:2]) > MAX_FRAME_SIDE:
        raise ValueError(f"frame is {a.shape[1]}x{a.shape[0]} (WxH); the limit is {MAX_FRAME_SIDE} px per side: "
                         "downscale it first")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        a = a[..., :3]
    if a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16:
        a = ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.floating):
        a = (np.clip(np.nan_to_num(a.astype(np.float32), nan=0.0), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        a = np.clip(a, 0, 255).astype(np.uint8)
    else:
        raise ValueError(f"frame dtype {a.dtype} is not supported; pass uint8 0..255, uint16 or float 0..1")
    return np.ascontiguousarray(a)


MAX_EVERY = 10   # beyond a third of a second at 30 fps the held alpha trails a moving person visibly


def check_every(every) -> int:
    """``every`` (run the network on every N-th frame) as an int in 1..MAX_EVERY, or a one-line ``ValueError``."""
    if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or not 1 <= int(every) <= MAX_EVERY:
        raise ValueError(f"every must be a whole number of frames from 1 (the network on every frame) to "
                         f"{MAX_EVERY}, got {every!r}")
    return int(every)


class Segmenter:
    """Person segmentation, frame by frame, with the recurrent state carried for the ConvLSTM model.

    Args:
      model: 'mobilenet' (default), 'convlstm' (temporal, least flicker) or 'unet'.
      checkpoint: None (shipped weights), a weights folder, a training workdir, or 'random' (untrained).
      input_size: None (auto, see module docstring), an int, 'HxW' or (h, w).
      base_size: the automatic inference size's base (its pixel budget, adapted to the frame's aspect ratio like
        the manifest's ``input_size``); None: the manifest's. A fixed ``input_size`` wins over it.
      keep_aspect: adapt the automatic inference size to the frame's aspect ratio (None: the weights'
        manifest decides, default True; weights trained on squashed square crops set it False).
      refine: 'guided' (edge-aware upsampling guided by the full-resolution RGB frame), 'guided-gray' (guided
        by its luma: cheaper) or 'bilinear'.
      guided_radius, guided_eps, guided_color, guided_subsample: guided filter settings (radius in inference
        pixels; subsample 2 fits at half the inference size, a little faster per frame on CPU (measured:
        results/MEASUREMENTS.md, 'streaming: guided filter subsample'); None: the default of
        :class:`seg_jax.inference.streaming.Refine`).
      variables, model_config: use these in-memory variables (and model options) instead of a checkpoint.
      fast: run the BatchNorm-folded network (:mod:`seg_jax.inference.fused`) for 'mobilenet' and 'convlstm' (same
        result to ~1e-6, faster on CPU); False runs the Flax model as it is.
      stabilise: the motion-gated hold of the previous alpha on a stream (:class:`seg_jax.ops.stabilise.Stabilise`;
        None: :data:`DEFAULT_STABILISE`; ``Stabilise()`` turns it off). It never changes the first frame after
        :meth:`reset`, so single images are unaffected.
      settle_steps: extra passes of a temporal model over the first frame after :meth:`reset`
        (:class:`seg_jax.inference.streaming.StreamingStep`); None: the weights manifest's (0 when absent).
      max_compiled_sizes: how many frame sizes keep compiled code at once
        (:mod:`seg_jax.inference.compiled_sizes`; None: its default); a new size beyond it drops all compiled
        code first, so memory stays flat over many sizes.
      every: run the network on every ``every``-th frame of a stream only; the frames between reuse its last
        low-resolution alpha, refined on each new frame by the guided filter (less CPU per frame, edges that
        follow the picture, a body that lags by up to ``every - 1`` frames; 1..:data:`MAX_EVERY`).
      dot_dtype: operand dtype of the fast path's 1x1 convolutions: 'auto' (bfloat16 on CPUs with native
        bfloat16 dot instructions, faster there with Dice unchanged to 1e-4; float32 elsewhere; measured:
        results/MEASUREMENTS.md, 'fused: bfloat16 1x1 products'), 'float32' or 'bfloat16'.
    """

    def __init__(self, model: str = "mobilenet", checkpoint: Union[None, str, os.PathLike] = None,
                 input_size: SizeLike = None, *, base_size: SizeLike = None, keep_aspect: Optional[bool] = None,
                 refine: str = "guided",
                 guided_radius: Optional[int] = None, guided_eps: float = 1e-3, guided_color: bool = True,
                 guided_subsample: int = 1,
                 variables: Optional[Mapping[str, Any]] = None, model_config: Optional[Mapping[str, Any]] = None,
                 fast: bool = True, dot_dtype: str = "auto",
                 stabilise: Optional[Stabilise] = None, settle_steps: Optional[int] = None, every: int = 1,
                 max_compiled_sizes: Optional[int] = None):
        get_spec(model)  # an unknown name fails here with the list of known ones
        self.model_name = model
        self.manifest: dict = {}
        if variables is None:
            if checkpoint is not None and str(checkpoint) == "random":
                variables = random_variables(model)
                self.manifest = {"model": {"name": model}, "random": True}
            else:
                variables, self.manifest = load_weights(model, checkpoint)
        config = dict(model_config or self.manifest.get("model") or {"name": model})
        config["name"] = model
        self.model = build_model(config)
        self.variables = variables
        try:
            manifest_size = check_input_size(parse_size(self.manifest.get("input_size"), auto=True))
        except ValueError as e:
            raise ValueError(f"the weights manifest of {checkpoint or 'the shipped weights'} has a bad input_size: "
                             f"{e}; fix its manifest.json") from None
        self.base_size = (check_input_size(parse_size(base_size, auto=True)) or manifest_size
                          or DEFAULT_INPUT_SIZE)
        self.fixed_size = check_input_size(parse_size(input_size, auto=True))
        self.keep_aspect = bool(self.manifest.get("keep_aspect", True)) if keep_aspect is None else keep_aspect
        # luma guide: cheaper on CPU, slightly less exact edges (measured: results/MEASUREMENTS.md,
        # 'segmenter: luma guide')
        if refine == "guided-gray":
            refine, guided_color = "guided", False
        if guided_radius is None:
            guided_radius = DEFAULT_GUIDED_RADIUS
        self.refine = Refine(refine, int(guided_radius), float(guided_eps), bool(guided_color), int(guided_subsample))
        self.stabilise = DEFAULT_STABILISE if stabilise is None else stabilise
        if not isinstance(self.stabilise, Stabilise):
            raise TypeError(f"stabilise must be a seg_jax.ops.stabilise.Stabilise or None, got {stabilise!r}")
        self.fast = bool(fast)
        self.settle_steps = (manifest_settle_steps(self.manifest, checkpoint) if settle_steps is None
                             else check_settle_steps(settle_steps, "Segmenter(settle_steps=...)"))
        self.dot_dtype = str(resolve_dot_dtype(dot_dtype))  # one-line error for a bad value, before any work
        self._folded = None  # folded weights, computed once for every inference size
        self._steps: dict[tuple[int, int], Any] = {}
        self.compiled_sizes = CompiledSizes(DEFAULT_LIMIT if max_compiled_sizes is None else max_compiled_sizes)
        self._state = None
        self._state_size: Optional[tuple[int, int]] = None
        self._state_frame: Optional[tuple[int, int]] = None   # the frame size the state was carried over
        self.every = check_every(every)
        self._held = None          # the last network frame's low-resolution alpha, reused while skipping
        self._since_network = 0    # frames since the network last ran

    # -- sizes and steps ---------------------------------------------------------------------------------
    def input_size_for(self, frame_hw: Sequence[int]) -> tuple[int, int]:
        """The (h, w) the network runs at for a frame of size ``frame_hw``."""
        if self.fixed_size is not None:
            return self.fixed_size
        return choose_input_size(frame_hw, self.base_size, keep_aspect=self.keep_aspect)

    def streaming_step(self, input_size: Sequence[int]):
        """The :class:`seg_jax.inference.streaming.StreamingStep` for an inference size (cached)."""
        key = (int(input_size[0]), int(input_size[1]))
        if key not in self._steps:
            if self.fast and self._folded is None:
                self._folded = fast_params(self.model, self.model_name, self.variables, self.dot_dtype) or False
            self._steps[key] = StreamingStep(self.model, self.model_name, self.variables, key, self.refine,
                                             fast=bool(self.fast and self._folded), folded=self._folded or None,
                                             stabilise=self.stabilise, settle_steps=self.settle_steps)
        return self._steps[key]

    # -- streaming API -----------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the recurrent state (call between unrelated clips or images)."""
        self._state = None
        self._state_size = None
        self._held = None

    def will_compile(self, frame_hw: Sequence[int]) -> bool:
        """Whether a frame of size ``frame_hw`` (H, W) compiles before it runs (a size not held now)."""
        return self.compiled_sizes.is_new((int(frame_hw[0]), int(frame_hw[1])))

    def step_device(self, frame: Any):
        """Like :meth:`step` but returns the alpha as a device array (no host copy)."""
        frame, opacity = split_opacity(frame)
        frame = as_rgb_uint8(frame)
        hw = frame.shape[:2]
        if self.compiled_sizes.add((int(hw[0]), int(hw[1]))):
            self._steps.clear()
            self.reset()
            drop_compiled()
        size = self.input_size_for(hw)
        step = self.streaming_step(size)
        if self._state is None or self._state_size != size or self._state_frame != hw:
            # a new stream (reset), or a frame of another size: the state of the previous frames does not apply
            self._state, self._state_size, self._state_frame = step.init_state(frame), size, hw
            self._held = None
        if self._held is not None and self._since_network < self.every - 1:
            self._since_network += 1
            alpha = step.refine_held(self._held, frame)
        else:
            self._state, alpha, prob = step.step_keeping_prob(self._state, frame)
            self._held, self._since_network = (prob if self.every > 1 else None), 0
        if opacity is not None:
            alpha = alpha * jnp.asarray(opacity)    # a transparent pixel is not person
        return alpha

    def step(self, frame: Any) -> np.ndarray:
        """(H, W, 3) uint8 RGB frame -> (H, W) float32 alpha in [0, 1] (soft; threshold at 0.5 for a mask)."""
        return np.asarray(self.step_device(frame), dtype=np.float32)

    __call__ = step

    def segment(self, image: Any) -> np.ndarray:
        """A single image, independent of the stream: reset, step, reset."""
        self.reset()
        try:
            return self.step(image)
        finally:
            self.reset()

    def warmup(self, frame_hw: Sequence[int]) -> None:
        """Compile for frames of size ``frame_hw`` before the first real frame."""
        self.step_device(np.zeros((int(frame_hw[0]), int(frame_hw[1]), 3), np.uint8)).block_until_ready()
        self.reset()

    def __repr__(self) -> str:
        src = "random" if self.manifest.get("random") else self.manifest.get("source", "checkpoint")
        size = self.fixed_size or f"auto(base {self.base_size[0]}x{self.base_size[1]})"
        return f"Segmenter(model={self.model_name!r}, weights={src}, input_size={size}, refine={self.refine.method})"


__all__ = ["MAX_EVERY", "Segmenter", "as_rgb_uint8", "check_every", "random_variables", "split_opacity"]
