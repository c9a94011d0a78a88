"""Write ``MODEL_CARD.md`` for a shipped weights folder from its ``manifest.json`` and an evaluation JSON.

    python -m seg_jax.model_card                      # every shipped folder (seg_jax/weights/*/MODEL_CARD.md)
    python -m seg_jax.model_card --weights seg_jax/weights/mobilenet --eval results/eval/eval-mobilenet.json

The evaluation JSON is what ``python -m seg_jax.evaluate`` writes (``{"results": [rows]}``; a row per model,
MediaPipe rows carry ``"peer": true``); metrics are taken at full resolution, per data source. Where the
model's evaluation file has no MediaPipe rows, those of ``--peers`` are shown, labelled with their split.
A manifest that records a warm start (``warm_start.from``) inherits the training data of the folder it came
from. The card is regenerated, never edited by hand. Imports no jax.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from seg_jax.common.args import OneLineParser
from seg_jax.common.exit_codes import USER_ERROR
from seg_jax.common.writer import OutputError, write_text

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
DEFAULT_EVAL = {"mobilenet": "results/eval/eval-mobilenet.json", "convlstm": "results/eval/eval-convlstm.json",
                "unet": "results/eval/eval-unet-cpu.json"}
DEFAULT_PEERS = "results/eval/eval-mobilenet.json"
METRICS = (("dice", "Dice"), ("iou", "IoU"), ("boundary_f", "boundary F"), ("mad", "MAD"))
SOURCE_ORDER = ("portraits", "selfies", "people", "fullbody", "davis", "camvid", "negatives")
# person recall columns: evaluate's keys (seg_jax.evaluation.person_recall.SIZE_BINS; that module imports jax)
RECALL = (("person_recall", "recall"), ("person_recall_small", "recall < 1 %"))
NO_DICE_SOURCES = ("negatives",)   # person-free photos: scored by false people only

ARCHITECTURES = {
    "mobilenet": "U-Net MobileNet (Shahi & Li 2023, model 2): MobileNetV3-Large encoder (to expanded_conv_12) and "
                 "a residual depthwise decoder with half-pixel bilinear 2x upsampling and skip additions; 1x1 head.",
    "convlstm": "U-Net MobileNet & ConvLSTM (Shahi & Li 2023, model 3): the U-Net MobileNet with a ConvLSTM cell "
                "(hard-sigmoid gates) after each of the four decoder merges; the (h, c) state is carried frame to "
                "frame.",
    "unet": "Baseline U-Net: encoder 64-128-256-512, bridge 1024, transposed-convolution decoder, 1x1 head.",
}

# The data sources the 'mixed' training pipeline draws from (seg_jax.data.real), with their terms as stated in
# the data folder's README (../shared/data/README.md).
SOURCES = (
    ("portraits", "100 webcam-style portrait selfies, soft mattes", "CUHK Deep Automatic Portrait Matting "
     "(Shen et al., ECCV 2016)", "research use only"),
    ("selfies", "1,368 head-and-shoulders selfies", "EG portrait set (Shen et al., Eurographics 2016; Flickr) and "
     "an AISegment matting subset", "academic exchange only / no licence stated: research use"),
    ("people", "290 mixed photos of people (full body, groups, street)", "Human-Segmentation-Dataset (V. Shenoy; "
     "GRAZ-01 and web images, remove.bg masks)", "no licence stated: research use"),
    ("fullbody", "901 full-body street photos", "Clothing Co-Parsing (Yang et al., CVPR 2014)",
     "repo Apache-2.0, photos from a fashion blog: research use"),
    ("cutouts", "200 RGBA person cut-outs (composite foregrounds)", "a public synthetic-data repository",
     "no licence stated: research use"),
    ("backgrounds", "119 people-free backgrounds (composite plates)", "Conference Video Segmentation Dataset "
     "(GPL-3.0), Pixabay, Background Matting samples, web", "mixed; see the data README"),
    ("davis", "DAVIS-2016 person sequences (6 training sequences)", "DAVIS 2016 (Perazzi et al.)", "CC BY-NC 4.0"),
)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} {path} is not valid JSON ({e.msg}, line {e.lineno})") from None


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else ("-" if v is None else str(v))


def _metric_table(model_row: dict, peers: list[dict], peer_note: str) -> list[str]:
    names = [model_row.get("model", "this model")] + [p.get("model", "peer") for p in peers]
    head = "| source | " + " | ".join(f"{n} {label}" for n in names for _, label in METRICS[:2]) + " | " + \
        " | ".join(f"{names[0]} {label}" for _, label in METRICS[2:]) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(names) + len(METRICS) - 2)]
    full = model_row.get("full_res", {})
    for source in [s for s in SOURCE_ORDER if s in full] + sorted(set(full) - set(SOURCE_ORDER)):
        if source in NO_DICE_SOURCES:
            continue
        cells = [_fmt(row.get("full_res", {}).get(source, {}).get(k)) for row in [model_row] + peers
                 for k, _ in METRICS[:2]]
        cells += [_fmt(full[source].get(k)) for k, _ in METRICS[2:]]
        n = full[source].get("examples")
        lines.append(f"| {source} ({int(n) if n else '?'}) | " + " | ".join(cells) + " |")
    return (lines + _false_person_table(model_row, peers, names) + _recall_table(model_row, peers, names)
            + ([""] + [peer_note] if peer_note else []))


def _recall_table(model_row: dict, peers: list[dict], names: list[str]) -> list[str]:
    """Person recall per source (the share of labelled people at least half predicted person), overall and for
    small people (< 1 % of the image), for the model and each peer."""
    full = model_row.get("full_res", {})
    sources = [s for s in SOURCE_ORDER if "person_recall" in full.get(s, {})] + sorted(
        s for s in set(full) - set(SOURCE_ORDER) if "person_recall" in full[s])
    if not sources:
        return []
    lines = ["", "Person recall (higher is better): the share of labelled people (connected person regions) at least "
             "half predicted person, overall and for small people (under 1 % of the image); ignored pixels count "
             "nowhere.", "", "| source (people, small) | " + " | ".join(f"{n} {label}" for n in names
                                                                           for _, label in RECALL) + " |",
             "|" + "---|" * (1 + len(RECALL) * len(names))]
    for source in sources:
        rows = [row.get("full_res", {}).get(source, {}) for row in [model_row] + peers]
        m = full[source]
        lines.append(f"| {source} ({int(m.get('people', 0))}, {int(m.get('people_small', 0))}) | "
                     + " | ".join(_fmt(r.get(k)) for r in rows for k, _ in RECALL) + " |")
    return lines


def _false_person_table(model_row: dict, peers: list[dict], names: list[str]) -> list[str]:
    """False people per source (share of non-person pixels predicted person) and, on the person-free photos,
    the share of images with a predicted person region of at least 1 % of the image."""
    full = model_row.get("full_res", {})
    if not any("false_person" in m for m in full.values()):
        return []
    lines = ["", "False people (lower is better): share of the non-person pixels predicted person; on the "
             "person-free photos also the share of images flagged with a person region of at least 1 %.", "",
             "| source | " + " | ".join(f"{n} false person" for n in names) + " | "
             + " | ".join(f"{n} images flagged" for n in names) + " |", "|" + "---|" * (1 + 2 * len(names))]
    for source in [s for s in SOURCE_ORDER if s in full] + sorted(set(full) - set(SOURCE_ORDER)):
        rows = [row.get("full_res", {}).get(source, {}) for row in [model_row] + peers]
        n = full[source].get("examples")
        lines.append(f"| {source} ({int(n) if n else '?'}) | " + " | ".join(_fmt(r.get("false_person")) for r in rows)
                     + " | " + " | ".join(_fmt(r.get("false_person_images")) for r in rows) + " |")
    return lines


def _leg_lines(training: dict, data: dict) -> list[str]:
    """Markdown lines for one training leg: steps, time, hardware, commands, start point and data mix."""
    lines = []
    if training:
        lines.append(f"- {training.get('steps', '?')} steps, {training.get('examples_seen', '?')} examples in the "
                     f"last leg, {_fmt(training.get('wall_time_hours'))} h on "
                     f"{(training.get('hardware') or {}).get('cpu', 'unknown hardware')}"
                     + (f" (record: `{training['record']}`)" if training.get("record") else ""))
        lines += [f"  `{c}`" for c in training.get("commands", [])]
        if training.get("init_from"):
            lines.append(f"- Initialised from {training['init_from'].get('weights')} "
                         f"(records: {', '.join(training['init_from'].get('records', []))})")
    if data:
        lines.append(f"- Data: source `{data.get('source')}`, mixing weights {data.get('weights')}, training crops "
                     f"{data.get('image_size')}")
    return lines


def _cells_lines(cells: Optional[dict]) -> list[str]:
    """How model 3's ConvLSTM cells were made (the manifest's ``cells``), or nothing when it does not say."""
    if not cells:
        return []
    if cells.get("kind") == "hand-set":
        return [f"- ConvLSTM cells: set by hand, not trained on clips: `{cells.get('command')}`"]
    return [f"- ConvLSTM cells: trained, {cells.get('steps')} steps, back-propagated through "
            f"{cells.get('sequence_length')} frames at a time, on {cells.get('data')}: `{cells.get('command')}`"]


def _training_lines(manifest: dict, weights_dir: Path) -> list[str]:
    lines = _cells_lines(manifest.get("cells"))
    warm = manifest.get("warm_start")
    if warm:
        lines.append(f"- Warm start from `{warm.get('from')}` (sha256 {str(warm.get('from_sha256', ''))[:12]}...); "
                     f"trained on clips: {warm.get('trained_on_clips', 'unknown')}. Commands:")
        lines += [f"  `{c}`" for c in warm.get("commands", [])]
        if warm.get("input_gate") == "complement":
            lines.append(f"- Cells: moving averages of their input (input gate 1 - f, recurrent kernel x "
                         f"{warm.get('recurrent_init_scale')}), forget-gate bias {warm.get('forget_bias')} (1/8 to "
                         f"full resolution); a stream runs {manifest.get('settle_steps', 0)} extra passes over its "
                         f"first frame (`settle_steps`), so a single image gets the per-frame answer.")
        parent = ROOT / str(warm.get("from", "")) / "manifest.json"
        if parent.is_file() and parent.resolve() != (weights_dir / "manifest.json").resolve():
            manifest = {**json.loads(parent.read_text()), "warm_start": None}
            lines.append(f"- The weights it starts from were trained as follows ({warm.get('from')}):")
    averaged = manifest.get("averaged_from") or []
    if averaged:
        lines.append(f"- Equal-weight average of {len(averaged)} checkpoints (parameters and BatchNorm statistics):")
        lines += [f"  `{c}`" for c in manifest.get("commands", [])]
        for i, source in enumerate(averaged, 1):
            source = source if isinstance(source, dict) else {"checkpoint": source}
            lines.append(f"- Source {i}: `{source.get('checkpoint') or source.get('source')}`"
                         + (f", itself an average of {len(source['averaged_from'])} checkpoints (its manifest lists "
                            "them)" if source.get("averaged_from") else ""))
            lines += ["  " + line for line in _leg_lines(source.get("training") or {}, source.get("data") or {})]
    lines += _leg_lines(manifest.get("training") or {}, manifest.get("data") or {})
    return lines or ["- No training record in the manifest."]


def render(manifest: dict, evaluation: Optional[dict], peers_eval: Optional[dict], weights_dir: Path,
           eval_name: str = "", peers_name: str = "") -> str:
    """The card's Markdown from a weights manifest and evaluation JSONs (either may lack fields)."""
    model = manifest.get("model", {})
    name = model.get("name", weights_dir.name)
    rows = (evaluation or {}).get("results", [])
    own = next((r for r in rows if not r.get("peer") and r.get("model") == name), None)
    peers = [r for r in rows if r.get("peer")]
    peer_note = ""
    if own is not None and not peers and peers_eval:
        peers = [r for r in peers_eval.get("results", []) if r.get("peer")]
        split = {r.get("split") for r in peers}
        if split != {own.get("split")}:  # other images: a separate table, never side by side
            peer_note = "\n".join(
                [f"MediaPipe was evaluated on the {', '.join(map(str, sorted(split)))} split only (`{peers_name}`), "
                 f"not on this model's `{own.get('split')}` split: other images, so its numbers are not comparable "
                 "row by row:", ""] + _metric_table(peers[0], peers[1:], ""))
            peers = []
    out = [f"# Model card: `{name}` ({weights_dir.name}/)", "",
           "Generated by `python -m seg_jax.model_card` from `manifest.json` and "
           f"`{eval_name or 'no evaluation file'}`; do not edit by hand.", "",
           "## Model", "", f"- Architecture: {ARCHITECTURES.get(name, name)}",
           f"- Parameters: {manifest.get('parameters', '?'):,} (params + BatchNorm statistics, the Keras count); "
           f"{_fmt(manifest.get('size_bytes', 0) / 1e6)} MB float32; sha256 `{manifest.get('sha256', '?')}`",
           f"- Options: {json.dumps({k: v for k, v in model.items() if k != 'name'})}",
           f"- Input: {manifest.get('input', 'RGB float in [0, 1], NHWC')}; inference size "
           f"{manifest.get('input_size', [256, 256])} (keep aspect: {manifest.get('keep_aspect', True)})",
           f"- Output: {manifest.get('output', 'logits (N, H, W, 1)')}",
           "- Also as ONNX: `python -m seg_jax.export --format onnx --model " + name + " --out model.onnx`", "",
           "## Training", ""] + _training_lines(manifest, weights_dir)
    out += ["", "### Training data (per source, with its terms)", "", "| source | what | origin | terms |",
            "|---|---|---|---|"] + [f"| {s} | {w} | {o} | {t} |" for s, w, o, t in SOURCES]
    out += ["", "Held-out test and val splits are fixed (`seg_jax/data/heldout_splits.json`) and never trained on.",
            "", "## Evaluation", ""]
    if own is None:
        out.append(f"No evaluation of `{name}` in `{eval_name or 'the evaluation file'}`.")
    else:
        out += [f"Split `{own.get('split')}`, full resolution (alpha at the frame size), inference size "
                f"{own.get('input_size')}, hardware {own.get('hardware', {}).get('cpu', '?')}. Per source "
                "(examples in brackets):", ""] + _metric_table(own, peers, peer_note)
    out += ["", "## Intended use", "",
            "Background blur or replacement for video calls and similar webcam footage: one person, or a few, "
            "near the camera, indoors, in usable light. Research and non-commercial use (see Licence).", "",
            "## Known failure cases", "",
            "- Small people far from the camera: on DAVIS (people fill 2-9% of the frame) Dice is far below the "
            "portrait sources.", "- Groups and crowds: the training masks label one main person (DAVIS, fullbody) "
            "or were made automatically (people); bystanders are often missed or merged.",
            "- Low light, strong back light and motion blur: few such images in the training data; not measured.",
            "- Thin structures (hair, fingers, held objects) at the default 256-pixel inference size.",
            "- Not for identifying people, surveillance, or any decision about a person.", "",
            "## Licence", "",
            "Code: Apache-2.0 (the project's licence). The weights were trained on data under research-only and "
            "non-commercial terms (table above; DAVIS is CC BY-NC 4.0): use them for research and non-commercial "
            "purposes only. The code's licence does not lift those terms.", ""]
    return "\n".join(out)


def write_card(weights_dir: Path, eval_path: Optional[Path], peers_path: Optional[Path] = None,
               out: Optional[Path] = None) -> Path:
    manifest = _read_json(weights_dir / "manifest.json", "manifest")
    evaluation = _read_json(eval_path, "evaluation JSON") if eval_path else None
    peers = _read_json(peers_path, "peers JSON") if peers_path and peers_path.is_file() else None
    rel = (lambda p: str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else str(p))
    text = render(manifest, evaluation, peers, weights_dir, rel(eval_path) if eval_path else "",
                  rel(peers_path) if peers_path else "")
    out = out or weights_dir / "MODEL_CARD.md"
    try:   # the card may live in the weights folder, but never over one of the files it is made from
        write_text(out, text, inputs=[weights_dir / "manifest.json", eval_path, peers_path], option="--out")
    except OutputError as e:
        raise ValueError(str(e)) from None
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OneLineParser(prog="python -m seg_jax.model_card", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="a weights folder (default: every folder in seg_jax/weights/)")
    p.add_argument("--eval", help="evaluation JSON (default: the results/ file for the model)")
    p.add_argument("--peers", default=DEFAULT_PEERS, help="evaluation JSON with MediaPipe rows (fallback)")
    p.add_argument("--out", help="card path (default: <weights>/MODEL_CARD.md)")
    args = p.parse_args(argv)
    folders = [Path(args.weights)] if args.weights else sorted(d for d in WEIGHTS.iterdir() if d.is_dir())
    try:
        for folder in folders:
            name = json.loads((folder / "manifest.json").read_text()).get("model", {}).get("name", folder.name) \
                if (folder / "manifest.json").is_file() else folder.name
            default = DEFAULT_EVAL.get(name)
            eval_path = Path(args.eval) if args.eval else (ROOT / default if default else None)
            peers = Path(args.peers) if Path(args.peers).is_absolute() else ROOT / args.peers
            print(write_card(folder, eval_path, peers, Path(args.out) if args.out else None))
    except (OSError, ValueError) as e:
        print(f"seg_jax.model_card: error: {e}", file=sys.stderr)
        return USER_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main())
