"""Write a seg_jax model as a standard ONNX graph (opset 17), BatchNorm folded, weights as initializers.

``python -m seg_jax.export --format onnx --model mobilenet --out model.onnx`` calls :func:`export_onnx`.

Graph interface (NHWC, like the JAX model and the ``jax.export`` artifact):

- input ``image`` (batch, height, width, 3) float32 RGB in [0, 1] (8-bit pixels / 255);
- output ``mask`` (batch, height, width, 1) float32 person probability (sigmoid applied), at the input size;
- 'convlstm' only: inputs ``h0i, c0i, ..., h3i, c3i`` and outputs ``h0o, c0o, ..., h3o, c3o``, the four cells'
  (h, c) at 1/8, 1/4, 1/2 and 1/1 of the input size with 72, 72, 64, 16 channels; feed zeros for the first
  frame and each call's outputs into the next call.

``batch`` is symbolic; so are ``height`` and ``width`` (any multiple of 32; 16 for 'unet') unless ``size``
fixes them. The model's ``metadata_props`` carry the same description for the JAX-free runner
(:mod:`seg_jax.onnx.runtime`).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import onnx

from seg_jax.artifacts.model_io import load_weights
from seg_jax.artifacts.settle import manifest_settle_steps
from seg_jax.common.writer import OutputError, write_bytes
from seg_jax.inference.fused import fold_batchnorm
from seg_jax.inference.plan import plan_for
from seg_jax.inference.sizes import check_input_size
from seg_jax.models.registry import get_spec
from seg_jax.onnx import graph as graph_lib
from seg_jax.onnx import mobilenet as mobilenet_lib
from seg_jax.onnx import unet as unet_lib

# The registered models this exporter can write, by the family of graph emitter that writes them.
EMITTER_FAMILY = {"mobilenet": "mobilenet", "convlstm": "mobilenet", "unet": "unet"}
MODELS = tuple(EMITTER_FAMILY)


def _spec(model_name: str):
    if model_name not in EMITTER_FAMILY:
        raise ValueError(f"unknown model {model_name!r}; choose one of {', '.join(MODELS)}")
    return get_spec(model_name)
INPUT_DOC = "image: (batch, height, width, 3) float32 RGB in [0, 1] (uint8 / 255), NHWC"
OUTPUT_DOC = "mask: (batch, height, width, 1) float32 person probability in [0, 1] at the input size"


def build_onnx(model_name: str, variables: Mapping[str, Any], model_config: Optional[Mapping[str, Any]] = None,
               metadata: Optional[Mapping[str, Any]] = None) -> onnx.ModelProto:
    """Flax ``{"params", "batch_stats"}`` of ``model_name`` -> ONNX model (symbolic batch, height, width)."""
    spec = _spec(model_name)
    config = dict(model_config or {})
    g = graph_lib.GraphBuilder(f"seg_jax_{model_name}")
    recurrent = spec.temporal
    if EMITTER_FAMILY[model_name] == "unet":
        unet_lib.emit(g, unet_lib.fold_unet(variables))
    else:
        plan = plan_for(model_name, config.get("gate_activation", "hard_sigmoid"),
                        bool(config.get("residual_cells", False)))
        mobilenet_lib.emit(g, fold_batchnorm(variables), plan)
    state = [{"input": i, "output": o, "shape": mobilenet_lib.state_shape(k // 2)}
             for k, (i, o) in enumerate(mobilenet_lib.state_names())] if recurrent else []
    props = {"seg_jax.model": model_name, "seg_jax.input": INPUT_DOC, "seg_jax.output": OUTPUT_DOC,
             "seg_jax.size_multiple": spec.size_multiple, "seg_jax.state": json.dumps(state),
             **{f"seg_jax.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in (metadata or {}).items()}}
    doc = f"seg_jax {model_name}: {INPUT_DOC} -> {OUTPUT_DOC}" + ("; recurrent state h*i/c*i -> h*o/c*o, zeros "
                                                                  "for the first frame, then seg_jax.settle_steps "
                                                                  "extra runs on it" if recurrent else "")
    return g.model(doc, props)


def fix_size(model: onnx.ModelProto, height: int, width: int, multiple: int) -> onnx.ModelProto:
    """Replace the symbolic height/width (and their 1/s fractions) of the inputs and outputs by numbers."""
    check_input_size((height, width), multiple)
    values = {"height": height, "width": width}
    values.update({f"{k}/{s}": v // s for k, v in list(values.items()) for s in mobilenet_lib.STATE_SCALES[:-1]})
    for info in list(model.graph.input) + list(model.graph.output):
        for dim in info.type.tensor_type.shape.dim:
            if dim.dim_param in values:
                dim.dim_value = values[dim.dim_param]
    return model


def _load(model_name: str, checkpoint: Any, random_init: bool, seed: int) -> tuple[dict, dict, dict]:
    if random_init:
        from seg_jax.inference.segmenter import random_variables
        return random_variables(model_name, seed, bn_jitter=True), {"name": model_name}, {"weights": "random-init"}
    variables, manifest = load_weights(model_name, checkpoint)
    meta = {"weights": str(checkpoint) if checkpoint else "shipped", "weights_sha256": manifest.get("sha256", ""),
            "input_size": manifest.get("input_size", [256, 256]), "keep_aspect": manifest.get("keep_aspect", True),
            "settle_steps": manifest_settle_steps(manifest, checkpoint)}
    return variables, dict(manifest.get("model") or {"name": model_name}), meta


def export_onnx(model_name: str, out: str | Path, *, checkpoint: Any = None, random_init: bool = False,
                seed: int = 0, size: Optional[tuple[int, int]] = None, variables: Optional[Mapping] = None,
                model_config: Optional[Mapping[str, Any]] = None) -> Path:
    """Build, check (``onnx.checker``) and write the ONNX model; returns ``out``.

    ``variables``/``model_config`` export in-memory weights (tests) instead of loading ``checkpoint``.
    ``size`` (h, w) fixes the spatial size; None keeps it symbolic. Errors are one-line ValueError /
    FileNotFoundError / OSError (unknown model, bad size, missing weights, unwritable ``out``).
    """
    multiple = _spec(model_name).size_multiple
    if size is not None:  # check before the (slow) weight loading
        check_input_size(size, multiple)
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give a file name such as {out / 'model.onnx'}")
    if variables is None:
        variables, model_config, meta = _load(model_name, checkpoint, random_init, seed)
    else:
        meta = {"weights": "in-memory"}
    model = build_onnx(model_name, variables, model_config, meta)
    if size is not None:
        fix_size(model, size[0], size[1], multiple)
    onnx.checker.check_model(model, full_check=True)
    try:
        write_bytes(out, model.SerializeToString(), option="--out")   # beside, then renamed: an earlier file stays
    except OutputError as e:
        raise OSError(str(e)) from None
    return out
