"""The inference-weights folder format: ``variables.msgpack`` + ``manifest.json``.

``variables.msgpack`` is the Flax-serialised ``{"params", "batch_stats"}``; ``manifest.json`` holds the model
name and options, the training config, data, metrics and the sha256 of the msgpack. Shipped weights live in
``seg_jax/weights/<model>/``. This module only writes and reads the files; :mod:`seg_jax.artifacts.model_io` turns any
weights source (this folder, a training workdir, a Keras file) into a model's variables.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import jax
from flax import serialization

from seg_jax.artifacts.manifest_schema import check_manifest

WEIGHTS_FILE = "variables.msgpack"
MANIFEST_FILE = "manifest.json"
SHIPPED_WEIGHTS_DIR = Path(__file__).parents[1] / "weights"


def shipped_weights_dir(model_name: str) -> Path:
    return SHIPPED_WEIGHTS_DIR / model_name


def is_weights_folder(path: str | os.PathLike) -> bool:
    return (Path(path) / MANIFEST_FILE).is_file()


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
        "parameters": int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(host_vars))),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        **(dict(extra) if extra else {}),
    }
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return out


def manifest_description(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """A manifest without the fields :func:`save_weights` derives from what it saves (``model``, ``parameters``,
    ``sha256``, ``size_bytes``): the ``extra`` to pass when saving changed weights under the same description."""
    return {k: v for k, v in manifest.items() if k not in ("model", "parameters", "sha256", "size_bytes")}


def read_folder(path: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict of numpy arrays, manifest) of a weights folder.

    Raises a one-line ``FileNotFoundError``/``ValueError`` for a missing or unreadable manifest, one whose fields
    have the wrong types or ranges (:mod:`seg_jax.artifacts.manifest_schema`), a missing or
    corrupt msgpack, or a msgpack that does not match the manifest's sha256; warns when there is no sha256.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path / MANIFEST_FILE} is missing; pass a weights folder written by "
                                f"seg_jax.artifacts.ship or seg_jax.artifacts.weights_folder.save_weights") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path / MANIFEST_FILE} is not valid JSON ({type(e).__name__}); the weights folder is "
                         "damaged") from None
    check_manifest(manifest, str(path / MANIFEST_FILE))
    try:
        raw = (path / WEIGHTS_FILE).read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path / WEIGHTS_FILE} is missing; the weights folder is incomplete") from None
    if not manifest.get("sha256"):
        warnings.warn(f"{path / MANIFEST_FILE} has no sha256: the weights cannot be checked for damage or "
                      f"tampering; re-save them with seg_jax.artifacts.weights_folder.save_weights", stacklevel=3)
    elif hashlib.sha256(raw).hexdigest() != manifest["sha256"]:
        raise ValueError(f"{path / WEIGHTS_FILE} does not match the sha256 in its manifest; the file is damaged")
    try:
        state = serialization.msgpack_restore(raw)
    except Exception as e:  # msgpack raises several types for corrupt bytes
        raise ValueError(f"{path / WEIGHTS_FILE} is corrupt ({type(e).__name__}); re-export or re-download "
                         "it") from None
    return dict(state), manifest


__all__ = ["MANIFEST_FILE", "SHIPPED_WEIGHTS_DIR", "WEIGHTS_FILE", "is_weights_folder", "read_folder",
           "save_weights", "shipped_weights_dir"]
