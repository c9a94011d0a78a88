"""Building a registered model and its variables: one home for model construction.

``config.model`` (a dict with ``name`` and options) -> Flax module; zero inputs of the right rank; real,
abstract (shapes only) and random variables; parameter counts; and the check that loaded variables fit a model.
"""
from __future__ import annotations

from typing import Any, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp

from seg_jax.models.registry import SPECS, get_spec

_ALL_OPTIONS = frozenset(o for spec in SPECS.values() for o in spec.options)


def create_model(name: str, **options: Any) -> nn.Module:
    """Build a registered model; unknown names and options fail with one line listing the valid ones."""
    spec = get_spec(name)
    unknown = set(options) - set(spec.options)
    if unknown:
        raise ValueError(f"model {name!r} has no option(s) {sorted(unknown)}; valid options: {sorted(spec.options)}")
    return spec.module_class()(**options)


def model_options(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor options of ``model_config`` (a ``config.model`` dict) for its model.

    Options that another registered model takes but this one does not (the shared config defaults) are
    dropped; options no model knows are kept so that :func:`create_model` names them as typos."""
    spec = get_spec(model_config["name"])
    options = {k: v for k, v in dict(model_config).items()
               if k != "name" and (k in spec.options or k not in _ALL_OPTIONS)}
    if "dtype" in options:
        options["dtype"] = jnp.dtype(options["dtype"])
    return options


def build_model(model_config: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """``config.model`` -> Flax module (unknown names/options raise a one-line error)."""
    options = model_options(model_config)
    options.update(overrides)
    return create_model(model_config["name"], **options)


def dummy_input(model_name: str, batch: int, height: int, width: int, time_steps: int = 1) -> jax.Array:
    """A zero input of the right rank for ``model_name``: (B, H, W, 3) or (B, T, H, W, 3)."""
    return jnp.zeros(get_spec(model_name).input_shape(batch, height, width, time_steps), jnp.float32)


def init_variables(model: nn.Module, model_name: str, rng: jax.Array, height: int = 64, width: int = 64) -> dict:
    """Initialise ``{"params", "batch_stats"}`` with a jitted init (the un-jitted init is much slower)."""
    x = dummy_input(model_name, 1, height, width)
    return dict(jax.jit(lambda key: model.init(key, x, train=False))(rng))


def abstract_variables(model: nn.Module, model_name: str, height: int = 64, width: int = 64) -> dict:
    """The shapes and dtypes of ``init_variables`` (``jax.ShapeDtypeStruct`` leaves), computing nothing."""
    x = dummy_input(model_name, 1, height, width)
    return dict(jax.eval_shape(lambda: model.init(jax.random.key(0), x, train=False)))


def count_parameters(variables: Any) -> int:
    """Keras-style parameter count: every leaf of params and batch_stats."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(variables)))


def check_variables_match(loaded: Any, expected: Any, source: str, model_name: str) -> None:
    """Raise a one-line ``ValueError`` when ``loaded`` does not have the leaves and shapes of ``expected``."""
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


__all__ = ["abstract_variables", "build_model", "check_variables_match", "count_parameters", "create_model",
           "dummy_input", "init_variables", "model_options"]
