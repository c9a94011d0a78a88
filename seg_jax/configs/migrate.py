"""Old training configs -> today's: the one place that knows a stored ``config.json`` may predate a field.

A workdir records its config when training starts; a later version of seg_jax reads it back to resume, to
check that a resumed run trains the same model, or to build the model of a checkpoint. ``migrate_config(stored)``
starts from today's defaults and lays the stored values over them, so readers use plain attribute access:
a field the stored run did not have takes today's default (which is what that run did), a field that no
longer exists (``REMOVED``) is dropped, a renamed one (``RENAMED``) is carried to its new name, and a field the
run added itself (a model option set in a config file) is kept.
"""
from __future__ import annotations

from typing import Any, Mapping

import ml_collections

from seg_jax.configs.default import get_default_config

RENAMED: dict[str, str] = {}        # old dotted name -> new dotted name
REMOVED = frozenset({"bias_lr_scale", "data.video_folder", "data.tfds_dir"})


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def migrate_config(stored: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A stored config (the JSON dict a workdir's ``config.json`` holds) as a complete config of today."""
    config = get_default_config()
    known = _flatten(config.to_dict())
    for dotted, value in _flatten(stored).items():
        dotted = RENAMED.get(dotted, dotted)
        if dotted in REMOVED:
            continue
        if isinstance(known.get(dotted), tuple) and isinstance(value, list):
            value = tuple(value)
        *parents, leaf = dotted.split(".")
        node = config
        for name in parents:
            if name not in node:
                node[name] = ml_collections.ConfigDict()
            node = node[name]
        with node.ignore_type():
            node[leaf] = value
    return config
