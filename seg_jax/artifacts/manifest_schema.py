"""The one schema of a weights folder's ``manifest.json``: each field a reader uses, its type and range.

:func:`check_manifest` runs when a weights folder is read (:func:`seg_jax.artifacts.weights_folder.read_folder`), so
every
command that loads weights (live tool, export, evaluation, training's ``init_from``) sees a manifest whose fields
have the types they assume; a wrong one is one ``ValueError`` line naming the file, the field, what it must be and
what it holds. Fields not listed here are descriptions (metrics, commands, notes) that no code reads; they pass.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional


@dataclasses.dataclass(frozen=True)
class Field:
    """A manifest field: ``kind`` 'bool' | 'int' | 'number' | 'str' | 'size' (an int or [height, width]) |
    'ints' (a list of ints); optional ``low``/``high`` bounds (inclusive) and ``choices``."""
    kind: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: tuple = ()



# What each reader assumes (model options: seg_jax.models.registry;
# sizes: seg_jax.inference.sizes.check_input_size).
MODEL_FIELDS: dict[str, Field] = {
    "name": Field("str"),
    "dtype": Field("str", choices=("float32", "bfloat16", "float16")),
    "depthwise_impl": Field("str"),
    "encoder_bn_momentum": Field("number", 0.0, 1.0),
    "gate_activation": Field("str"),
    "residual_cells": Field("bool"),
    "widths": Field("ints", 1),
}
TOP_FIELDS: dict[str, Field] = {
    "input_size": Field("size", 1),
    "keep_aspect": Field("bool"),
    "random": Field("bool"),
    "settle_steps": Field("int", 0),
    "parameters": Field("int", 0),
    "size_bytes": Field("int", 0),
    "sha256": Field("str"),
    "subtree": Field("str"),
    "source": Field("str"),
}

# ``cells`` (model 3): how its ConvLSTM cells were made; the fields each kind must carry and their types.
CELLS_FIELDS: dict[str, dict[str, Field]] = {
    "hand-set": {"command": Field("str")},
    "trained": {"command": Field("str"), "data": Field("str"), "sequence_length": Field("int", 1),
                "steps": Field("int", 0)},
}

_WORDS = {"bool": "true or false", "int": "a whole number", "number": "a number", "str": "a string",
          "size": "a size (an integer or [height, width])", "ints": "a list of whole numbers"}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _problem(value: Any, field: Field) -> Optional[str]:
    """-> what is wrong with ``value`` for ``field`` (the words after 'must be'), or None."""
    kind = field.kind
    numbers = ([value] if kind in ("int", "number") else
               [value] if kind == "size" and _is_int(value) else
               list(value) if kind in ("size", "ints") and isinstance(value, list) else None)
    ok = {"bool": isinstance(value, bool), "str": isinstance(value, str),
          "int": _is_int(value), "number": isinstance(value, (int, float)) and not isinstance(value, bool),
          "size": numbers is not None and len(numbers) in (1, 2) and all(map(_is_int, numbers)),
          "ints": numbers is not None and len(numbers) > 0 and all(map(_is_int, numbers))}[kind]
    if not ok:
        return _WORDS[kind]
    if field.choices and value not in field.choices:
        return f"one of {', '.join(map(repr, field.choices))}"
    for v in numbers or ():
        if (field.low is not None and v < field.low) or (field.high is not None and v > field.high):
            bounds = f"at least {field.low:g}" if field.high is None else f"in [{field.low:g}, {field.high:g}]"
            return f"{_WORDS[kind]} {bounds}"
    return None


def _check(fields: Mapping[str, Field], values: Mapping[str, Any], prefix: str, where: str) -> None:
    for key, field in fields.items():
        if key in values:
            wanted = _problem(values[key], field)
            if wanted:
                raise ValueError(f"{where}: '{prefix}{key}' must be {wanted}, got {values[key]!r}; fix the file or "
                                 "re-save the weights (seg_jax.artifacts.weights_folder.save_weights)")


def _check_cells(cells: Any, where: str, fix: str) -> None:
    """``cells`` must be {"kind": "hand-set", "command"} or {"kind": "trained", "command", "data",
    "sequence_length", "steps"} (more keys pass)."""
    kinds = " or ".join(repr(k) for k in CELLS_FIELDS)
    if not isinstance(cells, dict) or cells.get("kind") not in CELLS_FIELDS:
        raise ValueError(f"{where}: 'cells' must be an object whose 'kind' is {kinds}, got {cells!r}; {fix}")
    fields = CELLS_FIELDS[cells["kind"]]
    missing = [k for k in fields if k not in cells]
    if missing:
        raise ValueError(f"{where}: 'cells' of kind {cells['kind']!r} lacks {', '.join(map(repr, missing))}; {fix}")
    _check(fields, cells, "cells.", where)


def check_manifest(manifest: Any, where: str) -> dict:
    """``manifest`` (parsed JSON) -> the same dict, or a one-line ``ValueError`` naming ``where`` (its path) and
    the first field of the wrong type or range."""
    fix = "fix the file or re-save the weights (seg_jax.artifacts.weights_folder.save_weights)"
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: must be a JSON object, got a JSON {type(manifest).__name__}; {fix}")
    model = manifest.get("model")
    if model is not None:
        if not isinstance(model, dict):
            raise ValueError(f"{where}: 'model' must be an object like {{\"name\": \"mobilenet\"}}, got {model!r}; "
                             f"{fix}")
        if "name" not in model:
            raise ValueError(f"{where}: 'model' has no 'name'; {fix}")
        _check(MODEL_FIELDS, model, "model.", where)
    _check(TOP_FIELDS, manifest, "", where)
    if "cells" in manifest:
        _check_cells(manifest["cells"], where, fix)
    return manifest


__all__ = ["CELLS_FIELDS", "Field", "MODEL_FIELDS", "TOP_FIELDS", "check_manifest"]
