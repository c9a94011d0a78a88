"""``python -m seg_jax.onnx.check``: how far onnxruntime's output is from the Flax model's, per model and size.

Exports each model to ONNX, runs it in onnxruntime and the Flax model in JAX (``train=False``, grouped
depthwise convolutions) on the same random images (batch 2, values in [0, 1]), and records the largest
absolute difference of the probabilities. 'mobilenet' and 'convlstm' use the shipped weights; the ConvLSTM
runs a clip of ``--frames`` frames with the state fed back (its last state compared too); 'unet' uses a narrow
random model (widths 8-64, BatchNorm statistics perturbed) since no weights are shipped. Writes a JSON record.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from seg_jax.artifacts.model_io import load_weights
from seg_jax.artifacts.weights_folder import shipped_weights_dir
from seg_jax.inference.sizes import parse_sizes
from seg_jax.models.build import build_model
from seg_jax.models.registry import get_spec
from seg_jax.models.unet import UNet
from seg_jax.onnx.export import build_onnx


def _session(model_bytes: bytes):
    import onnxruntime as ort
    return ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def narrow_unet():
    import jax

    model = UNet(widths=(8, 16, 32, 64))
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), np.zeros((1, 32, 32, 3), np.float32),
                                               train=False))
    rng = np.random.default_rng(3)

    def fill(path, s):
        key = path[-1].key
        if key in ("var", "scale"):
            return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
        if key == "kernel":
            return rng.normal(0, 1.5 / np.sqrt(np.prod(s.shape[:-1])), s.shape).astype(np.float32)
        return rng.normal(0, 0.1, s.shape).astype(np.float32)
    return model, jax.tree_util.tree_map_with_path(fill, dict(shapes))


def compare(model_name: str, sizes, frames: int = 3) -> list[dict]:
    """[{"model", "size", "max_abs_diff", ...}] for each (h, w) in ``sizes``."""
    import jax

    if not shipped_weights_dir(model_name).exists():  # the baseline U-Net: no shipped weights
        model, variables, config = (*narrow_unet(), {"name": "unet"})
    else:
        variables, manifest = load_weights(model_name)
        config = manifest["model"]
        model = build_model(config, depthwise_impl="grouped")
    session = _session(build_onnx(model_name, variables, config).SerializeToString())
    apply = jax.jit(lambda v, x: model.apply(v, x, train=False))
    rows = []
    for h, w in sizes:
        rng = np.random.default_rng(h * 1000 + w)
        if not get_spec(model_name).temporal:
            x = rng.uniform(0, 1, (2, h, w, 3)).astype(np.float32)
            want = np.asarray(jax.nn.sigmoid(apply(variables, x)))
            got = session.run(["mask"], {"image": x})[0]
            rows.append({"model": model_name, "size": [h, w], "max_abs_diff": float(np.abs(got - want).max()),
                         "mask_std": float(want.std())})
            continue
        clip = rng.uniform(0, 1, (2, frames, h, w, 3)).astype(np.float32)
        logits, state = apply(variables, clip)
        outputs = [o.name for o in session.get_outputs()]
        feeds = {i.name: np.zeros((2,) + tuple(np.asarray(state[int(i.name[1])][0]).shape[1:]), np.float32)
                 for i in session.get_inputs() if i.name != "image"}
        masks = []
        for t in range(frames):
            res = dict(zip(outputs, session.run(outputs, dict(feeds, image=clip[:, t]))))
            masks.append(res.pop("mask"))
            feeds = {name[:-1] + "i": value for name, value in res.items()}
        state_diff = max(float(np.abs(feeds[f"{hc}{lv}i"] - np.asarray(state[lv][k])).max())
                         for lv in range(len(state)) for k, hc in enumerate("hc"))
        want = np.asarray(jax.nn.sigmoid(logits))
        rows.append({"model": model_name, "size": [h, w], "frames": frames,
                     "max_abs_diff": float(np.abs(np.stack(masks, 1) - want).max()),
                     "state_max_abs_diff": state_diff, "mask_std": float(want.std())})
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.onnx.check", description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mobilenet,convlstm,unet")
    p.add_argument("--sizes", default="64x96,96x64,160x288,256x256", help="comma list of HxW")
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--out", default="results/bench/onnx-vs-jax.json")
    args = p.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
    except ValueError as e:
        p.error(str(e))
    rows = []
    for name in args.models.split(","):
        rows += compare(name, sizes, args.frames)
        for r in rows[-len(sizes):]:
            print(f"{r['model']:10s} {r['size'][0]}x{r['size'][1]}: max |onnx - jax| {r['max_abs_diff']:.2e}")
    import onnx
    import onnxruntime
    record = {"what": "max abs difference of the person probability, onnxruntime vs the Flax model (float32)",
              "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "batch": 2, "results": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
