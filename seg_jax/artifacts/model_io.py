"""The one weights reader: any weights source -> variables + manifest, checked against the model.

A source is a weights folder (:mod:`seg_jax.artifacts.weights_folder`), a training workdir (Orbax, via
:mod:`seg_jax.training.checkpointing`: its best checkpoint, else the latest) or a Keras MobileNetV3Large ``.h5`` file
(encoder only, converted on the fly). :func:`read_weights` returns what the source holds;
:func:`load_weights` also checks it is a whole model of the asked architecture and builds nothing else.
Used by the Segmenter, the evaluator, the exporter, ``config.init_from`` and the converters.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp

from seg_jax.artifacts.weights_folder import MANIFEST_FILE, is_weights_folder, read_folder, shipped_weights_dir
from seg_jax.models.build import abstract_variables, build_model, check_variables_match
from seg_jax.training import checkpointing

KERAS_SUFFIXES = (".h5", ".hdf5")


def read_weights(path: str | os.PathLike, average: bool = True) -> tuple[dict, dict]:
    """(state {"params", "batch_stats"}, manifest) of a weights folder, training workdir or Keras ``.h5`` file.

    A workdir gives its best checkpoint (else the latest); ``<workdir>/checkpoints/latest`` or ``.../best`` names
    one of the two; ``average=False`` takes a checkpoint's raw parameters instead of their moving average
    (``config.ema_decay``). A manifest's ``"subtree"`` (e.g. ``"encoder"``) says the state holds only that part of a
    model; a workdir's manifest holds its training ``config`` and the ``checkpoint`` step folder. Raises a one-line
    ``FileNotFoundError``/``ValueError`` naming the path and the fix.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a weights folder (with {MANIFEST_FILE}), a training "
                                "workdir or a Keras .h5 file")
    if path.is_file() and path.suffix in KERAS_SUFFIXES:
        from seg_jax.models.keras_weights import ENCODER_KIND, ENCODER_SUBTREE, convert_h5
        return convert_h5(path), {"model": {"name": ENCODER_KIND}, "subtree": ENCODER_SUBTREE, "source": str(path)}
    if is_weights_folder(path):
        return read_folder(path)
    path, which = checkpointing.split_checkpoint_path(path)
    if path.is_dir() and checkpointing.has_checkpoint(path):
        state, config, where = checkpointing.restore_inference_state(path, which=which, average=average)
        return state, {"model": config.get("model", {}), "config": config, "checkpoint": where}
    raise FileNotFoundError(f"{path} holds no seg_jax weights (no {MANIFEST_FILE}) and no training checkpoint "
                            f"(no {checkpointing.CHECKPOINT_DIR}/latest/<step>); pass a weights folder or a workdir")


def load_weights(model_name: str, checkpoint: str | os.PathLike | None = None,
                 model_config: Mapping[str, Any] | None = None, average: bool = True) -> tuple[dict, dict]:
    """Inference variables {"params", "batch_stats"} (jax arrays) and the manifest of a whole ``model_name``.

    ``checkpoint``: None (the shipped weights) or any source :func:`read_weights` takes (``average`` as there).
    Raises a one-line
    error for a missing path, a corrupt file, a part of a model, or weights of another architecture.
    """
    path = Path(checkpoint) if checkpoint is not None else shipped_weights_dir(model_name)
    if checkpoint is None and not path.exists():
        raise FileNotFoundError(f"no shipped weights for model {model_name!r} at {path}; train one "
                                f"(python -m seg_jax.train --config configs/{model_name}.py) and pass --checkpoint")
    state, manifest = read_weights(path, average=average)
    if manifest.get("subtree"):
        raise ValueError(f"{path} holds only the {manifest['subtree']!r} part of a model; use it as "
                         "config.init_from to start a training run, not as a checkpoint")
    trained_as = (manifest.get("model") or {}).get("name")
    if trained_as and trained_as != model_name:
        raise ValueError(f"checkpoint {path} holds a {trained_as!r} model, not {model_name!r}; "
                         f"use --model {trained_as} or another checkpoint")
    config = dict(model_config or manifest.get("model") or {"name": model_name})
    config["name"] = model_name
    state = {k: state[k] for k in ("params", "batch_stats") if k in state}
    check_variables_match(state, abstract_variables(build_model(config), model_name), str(path), model_name)
    return jax.tree_util.tree_map(jnp.asarray, state), manifest


__all__ = ["load_weights", "read_weights"]
