"""Import Keras ``MobileNetV3Large`` weights (e.g. ImageNet) into seg_jax's ``MobileNetV3LargeEncoder``.

Command line::

    python -m seg_jax.convert.keras_mobilenet --weights mobilenet_v3_large.weights.h5 --out weights/imagenet_encoder

``--weights`` may be a Keras 3 ``.weights.h5`` (``model.save_weights``) or a legacy tf.keras 2.x HDF5 file
(the file ``keras.applications`` downloads, e.g. ``weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5``);
both are read with h5py only, Keras is not needed. From Python, ``convert_keras_model(model)`` takes a live
Keras model instead. To get the ImageNet weights as a file (needs internet and Keras)::

    KERAS_BACKEND=jax python -c "import keras; keras.applications.MobileNetV3Large(weights='imagenet', \
        include_top=False).save_weights('mobilenet_v3_large.weights.h5')"

The output folder has the usual seg_jax layout (``variables.msgpack`` + ``manifest.json``), holding only the
encoder's variables; its manifest says ``"subtree": "encoder"``. Point a config's ``init_from`` at it (see
``seg_jax.convert.load_init_variables``) to start a U-Net MobileNet or ConvLSTM model from it.

Layer names: Keras 3 writes ``expanded_conv_1_expand`` / ``expanded_conv_1_expand_bn``, tf.keras 2.x wrote
``expanded_conv_1/expand`` / ``expanded_conv_1/expand/BatchNorm``; both map to our
``expanded_conv_1/expand`` / ``expanded_conv_1/expand_BatchNormalization``. Depthwise kernels are stored
(k, k, C, 1) by Keras and (k, k, 1, C) by us. Layers past the encoder's cut (``expanded_conv_12``'s
depthwise/SE/project, blocks 13-14, the final ``conv_1``) are skipped and listed in the manifest.

Input convention: Keras' model takes 0..255 RGB and rescales to [-1, 1]; our encoder takes [0, 1] RGB and
applies x * 2 - 1, so ``encoder(x) == keras_model(255 * x)`` for the converted weights.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

from seg_jax.artifacts.weights_folder import save_weights
from seg_jax.models.keras_weights import (  # noqa: F401 - the converter's public names live here too
    ENCODER_KIND,
    ENCODER_SUBTREE,
    convert_h5,
    convert_keras_model,
    convert_layer_weights,
    expected_encoder_shapes,
    flax_target,
    layer_weights_from_h5,
    layer_weights_from_keras_model,
)


def save_encoder(out_dir: str | Path, variables: Mapping[str, Any], source: str,
                 skipped: Iterable[str] = ()) -> Path:
    """Write encoder variables as a seg_jax weights folder (loadable by ``load_init_variables``)."""

    extra = {
        "subtree": ENCODER_SUBTREE,
        "source": source,
        "converted_by": "seg_jax.convert.keras_mobilenet",
        "input_convention": "RGB float in [0, 1] (NHWC); the encoder applies x * 2 - 1 (Keras: 0..255 rescaled)",
        "skipped_keras_layers": list(skipped),
    }
    return save_weights(out_dir, {"name": ENCODER_KIND}, variables, extra)


def convert_file(weights: str | Path, out_dir: str | Path) -> Path:
    variables, skipped = convert_layer_weights(layer_weights_from_h5(weights))
    return save_encoder(out_dir, variables, source=str(weights), skipped=skipped)


def keras_tap_outputs(model: Any) -> list[Any]:
    """The Keras tensors of the encoder's four taps (expand_1, expand_3, depthwise_3, expand_12).

    Found through the graph, not by layer index: an expand activation is the input of the block's depthwise
    padding (or depthwise conv), the depthwise activation the input of the squeeze-excite pooling.
    """
    names = {layer.name.lower().replace("/", "_"): layer for layer in model.layers}

    def first(*candidates):
        for c in candidates:
            if c in names:
                return names[c]
        raise KeyError(f"none of {candidates} in the Keras model")

    def expand(b):
        return first(f"expanded_conv_{b}_depthwise_pad", f"expanded_conv_{b}_depthwise").input

    se = first("expanded_conv_3_squeeze_excite_avg_pool", "expanded_conv_3_squeeze_excite_avgpool")
    return [expand(1), expand(3), se.input, expand(12)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seg_jax.convert.keras_mobilenet",
                                     description="Convert Keras MobileNetV3Large weights to a seg_jax encoder folder.")
    parser.add_argument("--weights", required=True, help="Keras .weights.h5 (Keras 3) or legacy .h5 file")
    parser.add_argument("--out", required=True, help="output folder (variables.msgpack + manifest.json)")
    args = parser.parse_args(argv)
    try:
        out = convert_file(args.weights, args.out)
    except (FileNotFoundError, ImportError, ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} (use it as config.init_from)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
