"""``config.init_from``: start a model from converted or previously trained weights.

``load_init_variables(path, variables)`` returns ``variables`` with every leaf that the checkpoint at ``path``
provides replaced (params and batch_stats alike); everything else keeps its fresh initialisation. ``path`` is

- a converted encoder folder (``python -m seg_jax.convert.keras_mobilenet``; manifest ``"subtree": "encoder"``),
- any seg_jax weights folder (``variables.msgpack`` + ``manifest.json``), e.g. a trained ``mobilenet`` model
  to initialise the ``convlstm`` model (all its leaves exist there with the same shapes),
- a training workdir (Orbax; its best checkpoint, else the latest), or
- a Keras MobileNetV3Large ``.h5`` weights file (converted on the fly).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from seg_jax.artifacts.model_io import read_weights

log = logging.getLogger(__name__)


def _read_checkpoint(path: Path) -> tuple[dict, tuple[str, ...], str]:
    """(state {"params", "batch_stats"}, subtree prefix, description) of any source ``read_weights`` takes."""
    state, manifest = read_weights(path)
    subtree = tuple(p for p in str(manifest.get("subtree", "")).split("/") if p)
    kind = (manifest.get("model") or {}).get("name", "?")
    return state, subtree, f"{kind!r} weights {path}"


def load_init_variables(path: str | Path, variables: Mapping[str, Any], *, strict: bool = False) -> dict:
    """Return a copy of ``variables`` with the leaves found at ``path`` replaced.

    Args:
      path: converted encoder folder, seg_jax weights folder, or Keras ``.h5`` file (see module docstring).
      variables: the freshly initialised model variables ({"params", "batch_stats", ...}).
      strict: also fail when the checkpoint holds leaves the model does not have (default: log and ignore).
    Raises:
      FileNotFoundError / ValueError with a one-line reason: missing path, corrupt file, a leaf whose shape
      differs, or a checkpoint that shares no weights with the model.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"init_from {path} does not exist")
    state, prefix, what = _read_checkpoint(path)
    out = dict(variables)
    replaced = values = 0
    unexpected: list[str] = []
    for col, tree in state.items():
        if col not in out:
            unexpected.append(col)
            continue
        target = traverse_util.flatten_dict(out[col])
        for key, value in traverse_util.flatten_dict(tree).items():
            full = prefix + tuple(key)
            if full not in target:
                unexpected.append(f"{col}/{'/'.join(full)}")
                continue
            old = target[full]
            if tuple(np.shape(value)) != tuple(old.shape):
                raise ValueError(f"init_from {path}: {col}/{'/'.join(full)} has shape {np.shape(value)}, the model "
                                 f"needs {tuple(old.shape)}")
            target[full] = jnp.asarray(value, dtype=old.dtype)
            replaced += 1
            values += int(np.size(value))
        out[col] = traverse_util.unflatten_dict(target)
    if replaced == 0:
        raise ValueError(f"init_from {path}: none of its weights fit this model (e.g. {unexpected[:3]}); "
                         f"is it the right checkpoint for this architecture?")
    if unexpected:
        if strict:
            raise ValueError(f"init_from {path}: {len(unexpected)} weights have no place in the model, "
                             f"e.g. {unexpected[:3]}")
        log.warning("init_from %s: ignored %d weights the model lacks, e.g. %s", path, len(unexpected), unexpected[:3])
    total = sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables))
    log.info("init_from: %s replaced %d arrays (%d of %d values)", what, replaced, values, total)
    return out
