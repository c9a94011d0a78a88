"""Model construction from a config, variable initialisation, and inference weights on disk.

Inference weights are a folder with ``variables.msgpack`` (Flax-serialised ``{"params", "batch_stats"}``)
and ``manifest.json`` (model name and options, training config, data, metrics, sha256 of the msgpack).
Shipped weights live in ``seg_jax/weights/<model>/``. Training workdirs (Orbax) are read by
``seg_jax.checkpointing``; ``load_weights`` accepts either.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import serialization

from seg_jax.models import PAPER_PARAMETER_COUNTS, create_model, is_temporal

WEIGHTS_FILE = "variables.msgpack"
MANIFEST_FILE = "manifest.json"
SHIPPED_WEIGHTS_DIR = Path(__file__).parent / "weights"

# Model options that are not about the architecture and may differ between training and inference.
RUNTIME_OPTIONS = ("dtype", "depthwise_impl")


def model_options(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor options of ``model_config`` (a ``config.model`` dict) for its model."""
    name = model_config["name"]
    options = {k: v for k, v in dict(model_config).items() if k != "name"}
    if "dtype" in options:
        options["dtype"] = jnp.dtype(options["dtype"])
    if name == "unet":
        options.pop("depthwise_impl", None)
        options.pop("encoder_bn_momentum", None)
    if name != "convlstm":
        options.pop("gate_activation", None)
    return options


def build_model(model_config: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """``config.model`` -> Flax module (unknown names/options raise a one-line error)."""
    options = model_options(model_config)
    options.update(overrides)
    return create_model(model_config["name"], **options)


def dummy_input(model_name: str, batch: int, height: int, width: int, time_steps: int = 1) -> jax.Array:
    """A zero input of the right rank for ``model_name``: (B, H, W, 3) or (B, T, H, W, 3)."""
    shape = (batch, time_steps, height, width, 3) if is_temporal(model_name) else (batch, height, width, 3)
    return jnp.zeros(shape, jnp.float32)


def init_variables(model: nn.Module, model_name: str, rng: jax.Array, height: int = 64, width: int = 64) -> dict:
    """Initialise ``{"params", "batch_stats"}`` with a jitted init (un-jitted init is ~5x slower)."""
    x = dummy_input(model_name, 1, height, width)
    return dict(jax.jit(lambda key: model.init(key, x, train=False))(rng))


def count_parameters(variables: Any) -> int:
    """Keras-style parameter count: every leaf of params and batch_stats."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables)))


def save_weights(out_dir: str | os.PathLike, model_config: Mapping[str, Any], variables: Mapping[str, Any],
                 extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``variables.msgpack`` + ``manifest.json`` to ``out_dir`` (atomically per file)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    host_vars = jax.device_get({k: variables[k] for k in ("params", "batch_stats") if k in variables})
    payload = serialization.msgpack_serialize(serialization.to_state_dict(host_vars))
    tmp = out / (WEIGHTS_FILE + ".tmp")
    tmp.write_bytes(payload)
    tmp.replace(out / WEIGHTS_FILE)
    manifest = {
        "model": dict(model_config),
        "parameters": count_parameters(host_vars),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        **(dict(extra) if extra else {}),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return out


def check_variables_match(loaded: Any, expected: Any, source: str, model_name: str) -> None:
    flat_loaded = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(loaded)}
    flat_expected = {jax.tree_util.keystr(k): v.shape for k, v in jax.tree_util.tree_leaves_with_path(expected)}
    if flat_loaded != flat_expected:
        missing = sorted(set(flat_expected) - set(flat_loaded))[:3]
        unexpected = sorted(set(flat_loaded) - set(flat_expected))[:3]
        shapes = [k for k in set(flat_loaded) & set(flat_expected) if flat_loaded[k] != flat_expected[k]][:3]
        raise ValueError(
            f"weights in {source} do not fit model {model_name!r} (missing {missing}, unexpected {unexpected}, "
            f"shape mismatch {shapes}); pass the checkpoint of a {model_name!r} model or choose the model it "
            f"was trained as")


def shipped_weights_dir(model_name: str) -> Path:
    return SHIPPED_WEIGHTS_DIR / model_name


def load_weights(model_name: str, checkpoint: str | os.PathLike | None = None,
                 model_config: Mapping[str, Any] | None = None) -> tuple[dict, dict]:
    """Load inference variables for ``model_name``.

    ``checkpoint``: None (the shipped weights), a weights folder (``manifest.json``), or a training workdir
    (Orbax; its best checkpoint). Returns (variables {"params", "batch_stats"}, manifest dict).
    Raises a one-line error for a missing path, a corrupt file, or weights of another architecture.
    """
    path = Path(checkpoint) if checkpoint is not None else shipped_weights_dir(model_name)
    if not path.exists():
        if checkpoint is None:
            raise FileNotFoundError(f"no shipped weights for model {model_name!r} at {path}; train one "
                                    f"(python -m seg_jax.train --config configs/{model_name}.py) and pass --checkpoint")
        raise FileNotFoundError(f"checkpoint {path} does not exist; pass a weights folder (with {MANIFEST_FILE}) "
                                f"or a training workdir")
    if not (path / MANIFEST_FILE).exists():
        from seg_jax import checkpointing  # training workdirs (Orbax)
        return checkpointing.load_inference_variables(path, model_name)
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    trained_as = manifest.get("model", {}).get("name")
    if trained_as and trained_as != model_name:
        raise ValueError(f"checkpoint {path} holds a {trained_as!r} model, not {model_name!r}; "
                         f"use --model {trained_as} or another checkpoint")
    try:
        raw = (path / WEIGHTS_FILE).read_bytes()
        state = serialization.msgpack_restore(raw)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path / WEIGHTS_FILE} is missing; the weights folder is incomplete") from None
    except Exception as e:  # msgpack raises several types for corrupt bytes
        raise ValueError(f"{path / WEIGHTS_FILE} is corrupt ({type(e).__name__}); re-export or re-download "
                         "it") from None
    if not manifest.get("sha256"):
        warnings.warn(f"{path / MANIFEST_FILE} has no sha256: the weights cannot be checked for damage or "
                      f"tampering; re-save them with seg_jax.model_io.save_weights", stacklevel=2)
    elif hashlib.sha256(raw).hexdigest() != manifest["sha256"]:
        raise ValueError(f"{path / WEIGHTS_FILE} does not match the sha256 in its manifest; the file is damaged")
    config = dict(model_config or manifest.get("model") or {"name": model_name})
    config["name"] = model_name
    model = build_model(config)
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), dummy_input(model_name, 1, 64, 64), train=False))
    check_variables_match(state, dict(expected), str(path), model_name)
    variables = jax.tree_util.tree_map(jnp.asarray, state)
    return variables, manifest


__all__ = ["PAPER_PARAMETER_COUNTS", "build_model", "count_parameters", "dummy_input", "init_variables",
           "load_weights", "model_options", "save_weights", "shipped_weights_dir"]
