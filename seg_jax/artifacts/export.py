"""Export a seg_jax model as a serialized ``jax.export`` artifact (StableHLO, weights baked in).

Command line::

    python -m seg_jax.export --model mobilenet --out model.jaxexport                 # shipped weights
    python -m seg_jax.export --model convlstm --checkpoint runs/x --out lstm.jaxexport --size 256x256
    python -m seg_jax.export --model mobilenet --random-init --size 64x64 --out /tmp/m.jaxexport  # for tests
    python -m seg_jax.export --format onnx --model convlstm --out lstm.onnx          # ONNX, see seg_jax.onnx.export

The batch dimension is symbolic ("b"); height and width are fixed at export (``--size``, multiples of 32) or,
with ``--dynamic-size``, symbolic too ("32*h", "32*w"). By default one artifact is lowered for both CPU and
CUDA (``--platforms``).
Written next to ``--out``: ``<stem>.manifest.json`` (inputs, layout, value range, outputs, state shapes) and,
for the ConvLSTM model, ``<stem>.clip.jaxexport``:

- ``unet`` / ``mobilenet``: ``predict(images) -> mask``; images (b, H, W, 3) float32 RGB in [0, 1];
  mask (b, H, W, 1) float32 person probability (``--output logits`` for pre-sigmoid logits).
- ``convlstm``: ``<out>`` is the streaming step ``step(state, frame) -> (state, mask)``, frame (b, H, W, 3);
  ``<stem>.clip.jaxexport`` is ``clip(state, clips) -> (state, masks)``, clips (b, T, H, W, 3) with T fixed
  (``--clip-length``). A state is a flat tuple of 8 arrays (h0, c0, h1, c1, h2, c2, h3, c3) at 1/8, 1/4, 1/2
  and 1/1 resolution; start a stream with zeros of the shapes in the manifest.

Loading needs only jax (and flatbuffers), not seg_jax::

    from jax import export
    fn = export.deserialize(open("model.jaxexport", "rb").read())
    mask = fn.call(images)

``--depthwise-impl grouped`` (the default here) lowers depthwise convolutions to plain grouped convolutions,
the portable choice for other runtimes and GPUs; ``shift_add`` is faster on XLA:CPU.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax import export as jax_export

from seg_jax.artifacts.model_io import load_weights
from seg_jax.artifacts.settle import manifest_settle_steps
from seg_jax.artifacts.weights_folder import shipped_weights_dir
from seg_jax.common.args import OneLineParser
from seg_jax.common.exit_codes import USER_ERROR
from seg_jax.common.writer import OutputError, check_folder, check_output, write_bytes, write_json
from seg_jax.inference.sizes import parse_size
from seg_jax.models import MODEL_NAMES, get_spec
from seg_jax.models.build import build_model, init_variables
from seg_jax.models.unet_mobilenet import DECODER_WIDTHS, STATE_SCALES, UNetMobileNetConvLSTM

INPUT_DOC = "RGB, float32, values in [0, 1] (divide 8-bit pixels by 255), layout NHWC"


def _manifest_path(out: Path) -> Path:
    return out.with_suffix(".manifest.json")


def _clip_path(out: Path) -> Path:
    return out.with_suffix(".clip.jaxexport")


def read_guards(model_name: str, checkpoint: str | Path | None, random_init: bool = False) -> dict[str, Any]:
    """What an export reads, for :func:`seg_jax.common.writer.check_output`: the weights it loads (``--checkpoint``,
    or the shipped folder) may not be written over or into (their sha256 would no longer match)."""
    if random_init:
        return {"inputs": [], "protected_dirs": [], "option": "--out"}
    weights = Path(checkpoint) if checkpoint is not None else shipped_weights_dir(model_name)
    folder = weights if weights.is_dir() else weights.parent
    return {"inputs": [weights], "protected_dirs": [folder], "option": "--out"}


def check_out(out: str | Path, temporal: bool, guards: Mapping[str, Any] | None = None) -> None:
    """Before any work: every file the export writes (artifact, clip function, manifest) may be written, or a
    one-line :class:`OutputError` naming the path and the fix (a folder where a file goes, an unwritable folder,
    one of the weights it reads: ``guards``, :func:`read_guards`)."""
    out = Path(out)
    guards = dict(guards or {"option": "--out"})
    for path in [out, _manifest_path(out)] + ([_clip_path(out)] if temporal else []):
        if path.is_dir():
            raise OutputError(f"--out {out}: {path} is a folder; give a file path such as "
                              f"{path / ('model' + (out.suffix or '.jaxexport'))}")
        check_output(path, **guards)
    check_folder(out.parent, out.name, "--out")


def state_shapes(batch: Any, height: int, width: int) -> list[tuple]:
    """Shapes of the 8 flat state arrays (h0, c0, ..., h3, c3) of the ConvLSTM model."""
    shapes = []
    for scale, feats in zip(STATE_SCALES, DECODER_WIDTHS):
        shapes += [(batch, height // scale, width // scale, feats)] * 2
    return shapes


def _div(size: Any, scale: int) -> Any:
    """size // scale for an int, or for a symbolic '32*h' string ('4*h' for scale 8)."""
    if isinstance(size, int):
        return size // scale
    factor, sym = size.split("*")
    return f"{int(factor) // scale}*{sym}" if int(factor) != scale else sym


def _head(logits: jax.Array, output: str) -> jax.Array:
    logits = logits.astype(jnp.float32)
    return jax.nn.sigmoid(logits) if output == "mask" else logits


def export_functions(model_name: str, model: Any, variables: Mapping[str, Any], *, height: int, width: int,
                     output: str = "mask", clip_length: int = 4, dynamic_size: bool = False,
                     platforms: Sequence[str] = ("cpu",)) -> dict[str, jax_export.Exported]:
    """Export the inference functions of ``model`` with ``variables`` baked in, batch dimension symbolic.

    With ``dynamic_size`` height and width are symbolic too ("32*h", "32*w": any multiple of 32), and
    ``height``/``width`` are ignored. Returns {"predict": Exported} or, for the temporal model,
    {"step": Exported, "clip": Exported}.
    """
    if output not in ("mask", "logits"):
        raise ValueError(f"output must be 'mask' or 'logits', got {output!r}")
    variables = {k: variables[k] for k in ("params", "batch_stats") if k in variables}
    if dynamic_size:
        b, height, width = jax_export.symbolic_shape("b, 32*h, 32*w")
    else:
        if height % 32 or width % 32:
            raise ValueError(f"height and width must be multiples of 32, got {height}x{width}")
        (b,) = jax_export.symbolic_shape("b")
    f32 = jnp.float32
    opts = dict(platforms=tuple(platforms))
    if not get_spec(model_name).temporal:
        def predict(images):
            return _head(model.apply(variables, images, train=False), output)
        spec = jax.ShapeDtypeStruct((b, height, width, 3), f32)
        return {"predict": jax_export.export(jax.jit(predict), **opts)(spec)}

    state_spec = tuple(jax.ShapeDtypeStruct(s, f32) for s in state_shapes(b, height, width))

    def nest(flat):
        return tuple((flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2))

    def flatten(state):
        return tuple(a for hc in state for a in hc)

    def step(state, frame):
        new_state, logits = model.apply(variables, nest(state), frame, train=False,
                                        method=UNetMobileNetConvLSTM.step)
        return flatten(new_state), _head(logits, output)

    def clip(state, clips):
        logits, new_state = model.apply(variables, clips, nest(state), train=False)
        return flatten(new_state), _head(logits, output)

    frame_spec = jax.ShapeDtypeStruct((b, height, width, 3), f32)
    clip_spec = jax.ShapeDtypeStruct((b, clip_length, height, width, 3), f32)
    return {"step": jax_export.export(jax.jit(step), **opts)(state_spec, frame_spec),
            "clip": jax_export.export(jax.jit(clip), **opts)(state_spec, clip_spec)}


def build_manifest(model_name: str, model_config: Mapping[str, Any], files: Mapping[str, str], *, height: Any,
                   width: Any, output: str, clip_length: int, platforms: Sequence[str],
                   weights: Mapping[str, Any]) -> dict:
    """The JSON manifest; ``height``/``width`` are ints or symbolic strings ("32*h")."""
    out_doc = ("person probability per pixel in [0, 1] (sigmoid applied); threshold at 0.5 for a hard mask"
               if output == "mask" else "person logits per pixel (apply a sigmoid for probabilities)")
    frame = {"shape": ["b", height, width, 3], "dtype": "float32", "meaning": INPUT_DOC}
    mask = {"shape": ["b", height, width, 1], "dtype": "float32", "meaning": out_doc}
    manifest: dict[str, Any] = {
        "format": "jax.export serialized Exported (StableHLO); load with jax.export.deserialize(bytes)",
        "jax_version": jax.__version__,
        "platforms": list(platforms),
        "model": dict(model_config, name=model_name),
        "weights": dict(weights),
        "symbolic_dims": {"b": "batch size, any value >= 1",
                          **({"h": "height = 32*h", "w": "width = 32*w"} if isinstance(height, str) else {})},
        "functions": {},
    }
    if not get_spec(model_name).temporal:
        manifest["functions"]["predict"] = {"file": files["predict"], "call": "mask = fn.call(images)",
                                            "inputs": {"images": frame}, "outputs": {"mask": mask}}
        return manifest
    state = [{"name": f"{hc}{i}", "shape": list(s), "dtype": "float32"}
             for i, (scale, feats) in enumerate(zip(STATE_SCALES, DECODER_WIDTHS)) for hc in "hc"
             for s in [("b", _div(height, scale), _div(width, scale), feats)]]
    settle = int(weights.get("settle_steps", 0))
    state_doc = ("flat tuple of 8 ConvLSTM arrays (h0, c0, h1, c1, h2, c2, h3, c3); start a stream with zeros"
                 + (f", call step {settle} more times on the first frame keeping only the state (the weights' "
                    "settle_steps)" if settle else "")
                 + ", feed each call's returned state into the next")
    manifest["state"] = {"meaning": state_doc, "arrays": state}
    manifest["functions"]["step"] = {
        "file": files["step"], "call": "state, mask = fn.call(state, frame)",
        "inputs": {"state": state_doc, "frame": frame}, "outputs": {"state": state_doc, "mask": mask}}
    manifest["functions"]["clip"] = {
        "file": files["clip"], "call": "state, masks = fn.call(state, clips)",
        "inputs": {"state": state_doc,
                   "clips": dict(frame, shape=["b", clip_length, height, width, 3])},
        "outputs": {"state": state_doc, "masks": dict(mask, shape=["b", clip_length, height, width, 1])}}
    return manifest


def export_to_files(model_name: str, out: str | Path, *, checkpoint: str | Path | None = None,
                    random_init: bool = False, height: int = 256, width: int = 256,
                    depthwise_impl: str = "grouped", output: str = "mask", clip_length: int = 4,
                    dynamic_size: bool = False, platforms: Sequence[str] = ("cpu",), seed: int = 0) -> dict[str, Path]:
    """Load (or randomly initialise) a model, export it, write the artifact(s) and manifest. Returns paths.
    ``out`` is checked before the (long) export, and each file is written atomically."""
    guards = read_guards(model_name, checkpoint, random_init)
    check_out(out, get_spec(model_name).temporal, guards)
    if random_init:
        config: dict[str, Any] = {"name": model_name}
        weights: dict[str, Any] = {"source": "random-init", "seed": seed}
    else:
        variables, wmanifest = load_weights(model_name, checkpoint)
        config = dict(wmanifest.get("model") or {"name": model_name})
        weights = {"source": str(checkpoint) if checkpoint else "shipped", "sha256": wmanifest.get("sha256"),
                   "settle_steps": manifest_settle_steps(wmanifest, checkpoint)}
    config["name"] = model_name
    overrides = {"depthwise_impl": depthwise_impl} if "depthwise_impl" in get_spec(model_name).options else {}
    model = build_model(config, **overrides)
    if random_init:
        variables = init_variables(model, model_name, jax.random.key(seed), 64, 64)
    exported = export_functions(model_name, model, variables, height=height, width=width, output=output,
                                clip_length=clip_length, dynamic_size=dynamic_size, platforms=platforms)
    if dynamic_size:
        height, width = "32*h", "32*w"
    out = Path(out)
    paths = {"step" if get_spec(model_name).temporal else "predict": out}
    if get_spec(model_name).temporal:
        paths["clip"] = _clip_path(out)
    for name, path in paths.items():
        write_bytes(path, exported[name].serialize(), **guards)
    config.update(overrides)
    manifest = build_manifest(model_name, config, {k: p.name for k, p in paths.items()}, height=height,
                              width=width, output=output, clip_length=clip_length, platforms=platforms,
                              weights=weights)
    paths["manifest"] = _manifest_path(out)
    write_json(paths["manifest"], manifest, **guards)
    return paths


def _size(text: str) -> tuple[int, int]:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _export_onnx(args: argparse.Namespace) -> dict[str, Path]:
    try:
        from seg_jax.onnx.export import export_onnx
    except ImportError as e:
        raise ValueError(f"--format onnx needs the onnx package ({e.name} is missing): "
                         "pip install 'seg_jax[onnx]'") from None
    return {"onnx": export_onnx(args.model, args.out, checkpoint=args.checkpoint, random_init=args.random_init,
                                seed=args.seed, size=args.size)}


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m seg_jax.export", description=__doc__.split("\n\n")[0])
    p.add_argument("--format", default="jax", choices=["jax", "onnx"],
                   help="jax: jax.export StableHLO artifact (default); onnx: a standard ONNX graph (opset 17)")
    p.add_argument("--model", required=True, choices=MODEL_NAMES)
    p.add_argument("--out", required=True, help="artifact path, e.g. model.jaxexport or model.onnx")
    p.add_argument("--checkpoint", default=None, help="weights folder or training workdir (default: shipped)")
    p.add_argument("--random-init", action="store_true", help="random weights (for tests and benchmarks)")
    p.add_argument("--size", type=_size, default=None,
                   help="HxW of the input, e.g. 256x256 (multiples of 32; default 256x256 for jax, symbolic for onnx)")
    p.add_argument("--depthwise-impl", default="grouped", choices=["grouped", "shift_add"])
    p.add_argument("--dynamic-size", action="store_true",
                   help="symbolic height and width (any multiples of 32) instead of --size")
    p.add_argument("--output", default="mask", choices=["mask", "logits"])
    p.add_argument("--clip-length", type=int, default=4, help="T of the convlstm clip function")
    p.add_argument("--platforms", default="cpu,cuda",
                   help="comma-separated lowering platforms (default cpu,cuda: one artifact for both)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.random_init and args.checkpoint:
        p.error("--random-init and --checkpoint exclude each other")
    if args.format == "onnx" and args.output != "mask":
        p.error("--format onnx writes the person probability ('mask'); --output logits is for --format jax")
    try:
        if args.format == "onnx":
            check_out(args.out, False, read_guards(args.model, args.checkpoint, args.random_init))
            paths = _export_onnx(args)
        else:
            size = args.size or (256, 256)
            paths = export_to_files(args.model, args.out, checkpoint=args.checkpoint, random_init=args.random_init,
                                    height=size[0], width=size[1], depthwise_impl=args.depthwise_impl,
                                    output=args.output, clip_length=args.clip_length,
                                    dynamic_size=args.dynamic_size,
                                    platforms=[s.strip() for s in args.platforms.split(",") if s.strip()],
                                    seed=args.seed)
    except (OSError, ValueError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return USER_ERROR
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
