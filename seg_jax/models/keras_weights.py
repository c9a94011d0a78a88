"""Keras ``MobileNetV3Large`` weights -> the variables of seg_jax's ``MobileNetV3LargeEncoder``.

Reads a Keras 3 ``.weights.h5`` or a legacy tf.keras 2.x HDF5 file with h5py (Keras is not needed), or takes a
live Keras model, and maps its layers onto the encoder's parameter tree. Keras 3 names layers
``expanded_conv_1_expand`` / ``expanded_conv_1_expand_bn``, tf.keras 2.x ``expanded_conv_1/expand`` /
``expanded_conv_1/expand/BatchNorm``; both map to our ``expanded_conv_1/expand`` /
``expanded_conv_1/expand_BatchNormalization``. Depthwise kernels are stored (k, k, C, 1) by Keras and
(k, k, 1, C) by us. Layers past the encoder's cut are skipped and listed. The command line and the weights
folder it writes are in :mod:`seg_jax.convert.keras_mobilenet`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seg_jax.models.mobilenet_v3 import MobileNetV3LargeEncoder

ENCODER_KIND = "mobilenet_v3_large_encoder"
ENCODER_SUBTREE = "encoder"  # where the encoder sits in seg_jax's MobileNet models

# Keras weight names -> (collection, flax leaf name), per layer kind.
_CONV_WEIGHTS = {"kernel": ("params", "kernel"), "bias": ("params", "bias")}
_DEPTHWISE_WEIGHTS = {"kernel": ("params", "kernel"), "depthwise_kernel": ("params", "kernel")}
_BN_WEIGHTS = {"gamma": ("params", "scale"), "beta": ("params", "bias"),
               "moving_mean": ("batch_stats", "mean"), "moving_variance": ("batch_stats", "var")}
# Order of ``layer.weights`` in Keras (used for Keras 3 ``.weights.h5`` files, which store vars by index).
_ORDER = {"conv": ("kernel", "bias"), "depthwise": ("kernel", "bias"),
          "bn": ("gamma", "beta", "moving_mean", "moving_variance")}

_BN_SUFFIX = r"(?:_(?P<bn>bn|batchnorm|batchnormalization))?"
_BLOCK_RE = re.compile(r"^(?P<block>expanded_conv(?:_\d+)?)_(?P<op>expand|depthwise|project|squeeze_excite_conv(?:_1)?)"
                       + _BN_SUFFIX + "$")
_STEM_RE = re.compile(r"^conv" + _BN_SUFFIX + "$")


def flax_target(keras_layer_name: str) -> tuple[tuple[str, ...], str] | None:
    """Keras layer name -> (path of the Flax module inside the encoder, kind 'conv'|'depthwise'|'bn'), or None.

    Accepts Keras 3 names (``expanded_conv_3_squeeze_excite_conv_1``, ``conv_bn``) and tf.keras 2.x names
    (``expanded_conv_3/squeeze_excite/Conv_1``, ``Conv/BatchNorm``). Returns None for layers without a
    counterpart (the top ``conv_1``, activations, ...).
    """
    name = keras_layer_name.lower().replace("/", "_")
    m = _STEM_RE.match(name)
    if m:
        return (("conv_BatchNormalization",), "bn") if m.group("bn") else (("conv",), "conv")
    m = _BLOCK_RE.match(name)
    if not m:
        return None
    op = m.group("op")
    if op.startswith("squeeze_excite"):
        if m.group("bn"):
            return None
        return (m.group("block"), "squeeze_excite_Conv" + op[len("squeeze_excite_conv"):]), "conv"
    if m.group("bn"):
        return (m.group("block"), f"{op}_BatchNormalization"), "bn"
    return (m.group("block"), op), "depthwise" if op == "depthwise" else "conv"


def _weight_short_name(name: str) -> str:
    return name.split("/")[-1].split(":")[0]


# ----------------------------------------------------------------------------------------------- readers
def layer_weights_from_keras_model(model: Any) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from a live Keras (3 or tf.keras 2.x) model."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        out[layer.name] = {_weight_short_name(getattr(w, "path", None) or w.name): np.asarray(w.numpy())
                           for w in layer.weights}
    return out


def layer_weights_from_h5(path: str | Path) -> dict[str, dict[str, np.ndarray]]:
    """{layer name: {weight name: array}} from a Keras 3 ``.weights.h5`` or a legacy tf.keras HDF5 file."""
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras .h5 weights needs h5py: pip install h5py (Keras installs it too)") from None

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    out: dict[str, dict[str, np.ndarray]] = {}
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not a readable HDF5 weights file ({e})") from None
    with f:
        root = f["model_weights"] if "model_weights" in f else f  # full-model legacy .h5 files nest weights
        if "layer_names" in root.attrs:  # legacy tf.keras format: named weights per layer
            for lname in root.attrs["layer_names"]:
                lname = lname.decode() if isinstance(lname, bytes) else str(lname)
                group = root[lname]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
                if names:
                    out[lname] = {_weight_short_name(n): np.asarray(group[n]) for n in names}
        elif "layers" in root:  # Keras 3 format: layers/<object name>/vars/<index>, attrs['name'] = layer name
            for group in root["layers"].values():
                if "vars" not in group or not len(group["vars"]):
                    continue
                lname = str(group["vars"].attrs.get("name", ""))
                target = flax_target(lname)
                if target is None:
                    continue
                order = _ORDER[target[1]]
                values = [np.asarray(group["vars"][str(i)]) for i in range(len(group["vars"]))]
                if len(values) > len(order):
                    raise ValueError(f"{path}: layer {lname!r} has {len(values)} weights, expected at most "
                                     f"{len(order)}")
                out[lname] = dict(zip(order, values))
        else:
            raise ValueError(f"{path} is neither a Keras 3 .weights.h5 nor a legacy Keras HDF5 weights file")
    return out


# ----------------------------------------------------------------------------------------------- mapping
def expected_encoder_shapes() -> dict[str, dict[tuple[str, ...], tuple[int, ...]]]:
    """{collection: {flax path: shape}} of ``MobileNetV3LargeEncoder`` (computed abstractly, no init cost)."""
    import jax
    import jax.numpy as jnp
    from flax import traverse_util


    enc = MobileNetV3LargeEncoder(depthwise_impl="shift_add")
    shapes = jax.eval_shape(lambda: enc.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
    return {col: {k: tuple(v.shape) for k, v in traverse_util.flatten_dict(shapes[col]).items()}
            for col in ("params", "batch_stats")}


def convert_layer_weights(layer_weights: Mapping[str, Mapping[str, np.ndarray]]
                          ) -> tuple[dict[str, Any], list[str]]:
    """Map {Keras layer: {weight: array}} onto the encoder.

    Returns (variables {"params", "batch_stats"} as nested dicts of float32 numpy arrays, skipped layer names).
    Raises ValueError naming the first missing or mis-shaped weights (e.g. a Keras model built with
    alpha != 1.0 or minimalistic=True).
    """
    from flax import traverse_util

    expected = expected_encoder_shapes()
    flat: dict[str, dict[tuple[str, ...], np.ndarray]] = {"params": {}, "batch_stats": {}}
    skipped: list[str] = []
    for lname, weights in layer_weights.items():
        target = flax_target(lname)
        if target is None:
            skipped.append(lname)
            continue
        module, kind = target
        table = {"conv": _CONV_WEIGHTS, "depthwise": _DEPTHWISE_WEIGHTS, "bn": _BN_WEIGHTS}[kind]
        if (module + ("kernel",)) not in expected["params"] and (module + ("scale",)) not in expected["params"]:
            skipped.append(lname)  # a layer past the encoder's cut
            continue
        for wname, value in weights.items():
            if wname not in table:
                raise ValueError(f"Keras layer {lname!r} has an unexpected weight {wname!r}")
            col, leaf = table[wname]
            value = np.asarray(value, np.float32)
            if kind == "depthwise" and leaf == "kernel":
                value = value.transpose(0, 1, 3, 2)  # Keras (k, k, C, 1) -> ours (k, k, 1, C)
            key = module + (leaf,)
            want = expected[col].get(key)
            if want is None:
                raise ValueError(f"Keras weight {lname}/{wname} maps to {'/'.join(key)}, which the encoder lacks")
            if tuple(value.shape) != want:
                raise ValueError(f"Keras weight {lname}/{wname} has shape {value.shape}, the encoder's "
                                 f"{'/'.join(key)} needs {want}; was the Keras model built as MobileNetV3Large "
                                 f"with alpha=1.0 and minimalistic=False?")
            if key in flat[col]:
                raise ValueError(f"two Keras layers map to {'/'.join(key)} (second: {lname!r})")
            flat[col][key] = value
    for col in expected:
        missing = sorted(set(expected[col]) - set(flat[col]))
        if missing:
            raise ValueError(f"{len(missing)} encoder weights found no Keras counterpart, e.g. "
                             f"{['/'.join(k) for k in missing[:3]]} ({col}); is this a MobileNetV3Large?")
    variables = {col: traverse_util.unflatten_dict(flat[col]) for col in ("params", "batch_stats")}
    return variables, sorted(skipped)


def convert_keras_model(model: Any) -> dict[str, Any]:
    """Encoder variables {"params", "batch_stats"} from a live ``keras.applications.MobileNetV3Large``."""
    return convert_layer_weights(layer_weights_from_keras_model(model))[0]


def convert_h5(path: str | Path) -> dict[str, Any]:
    """Encoder variables {"params", "batch_stats"} from a Keras weights file (Keras 3 or legacy HDF5)."""
    return convert_layer_weights(layer_weights_from_h5(path))[0]
