"""``python -m seg_jax.bench.spill``: how much of the old background's colour a replace mode leaves on the edge.

Held-out real people with soft mattes (the test split of ``portraits`` and ``selfies``, keeping the images whose
matte has a soft band) are pasted by their true alpha onto a saturated colour (``--old``, pure green), then that
shot goes through the compositor with another colour (``--new``, pure blue) as the new background. The ideal
output is the photo pasted straight on the new colour by the same alpha, ``a I + (1 - a) new``; on the edge
band (true alpha in (0.05, 0.95)) the bench reports

- ``old_left``: the share of the old colour still showing, the mean of ``(out - ideal) . (old - new) /
  |old - new|^2`` (0 none, 1 all of it, as much as the (1 - a) of the shot),
- ``green_left``: the output's green channel above the ideal's, in 8-bit levels,
- ``rgb_err``: the mean absolute difference from the ideal, in 8-bit levels,

for the frame blended as it is (``plain``, the compositor before clean edges), the estimated foreground
(``clean``), and each with light wrap. The alpha is the true one (isolates the compositing) and, with
``--model``, the shipped model's through :class:`seg_jax.Segmenter`. It also times the replace at 640x480 and
draws edge crops (``--figures``): the pasted shots, and a frame of the sample office clip on a new background.

    python -m seg_jax.bench.spill --data ../shared/data --out results/bench/spill.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import numpy as np

from seg_jax.bench.timing import hardware, interleaved
from seg_jax.data import io, real
from seg_jax.inference.segmenter import Segmenter
from seg_jax.live.sources import resize_cover
from seg_jax.ops.composite import AlphaOptions, CompositeOptions, render

SUBSETS = ("portraits", "selfies")
MAX_SIDE = 640          # shots are shrunk to fit (the live tool's sizes)
SOFT = (0.05, 0.95)     # the edge band: true alpha strictly between these
MIN_SOFT_SHARE = 0.005  # a matte with fewer soft pixels than this share is binary: skipped
VARIANTS = ("plain", "clean", "plain+wrap", "clean+wrap")


def _rgb(text: str) -> tuple[int, int, int]:
    rgb = tuple(int(v) for v in text.split(","))
    if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
        raise argparse.ArgumentTypeError(f"expected r,g,b with values 0..255, got {text!r}")
    return rgb  # type: ignore[return-value]


def soft_shots(root: str, split: str, limit: Optional[int]) -> list[dict]:
    """The held-out pairs with a soft matte: [{'name', 'image' (H, W, 3) uint8, 'alpha' (H, W) float32}]."""
    out = []
    for subset in SUBSETS:
        for entry in real.heldout_files(root, split=split, subset=subset):
            pair = io.read_pair(entry["image_path"], entry["mask_path"])
            h, w = pair["image"].shape[:2]
            scale = min(1.0, MAX_SIDE / max(h, w))
            hw = (round(h * scale), round(w * scale))
            image = io.resize(pair["image"], hw)
            alpha = io.resize(pair["mask"], hw).reshape(hw).astype(np.float32) / 255.0
            if ((alpha > SOFT[0]) & (alpha < SOFT[1])).mean() < MIN_SOFT_SHARE:
                continue
            out.append({"name": f"{subset}/{entry['name']}", "image": image, "alpha": alpha})
            if limit and len(out) >= limit:
                return out
    return out


def options(variant: str, new: tuple[int, int, int], wrap: float):
    return CompositeOptions("color", color=new, clean_edges=variant.startswith("clean"),
                            light_wrap=wrap if variant.endswith("wrap") else 0.0)


def replace(shot: np.ndarray, alpha: np.ndarray, variant: str, new, wrap: float) -> np.ndarray:
    """The live tool's replace (render: alpha stage off, staged composite) -> (H, W, 3) uint8."""
    import jax.numpy as jnp

    out, _ = render(shot, jnp.asarray(alpha), None, None, 0.0, AlphaOptions(), options(variant, new, wrap))
    return np.asarray(out)


def edge_metrics(out: np.ndarray, ideal: np.ndarray, band: np.ndarray, old, new) -> dict[str, float]:
    """The band's ``old_left`` share, ``green_left`` and ``rgb_err`` (8-bit levels) of ``out`` vs ``ideal``."""
    diff = out.astype(np.float64) - ideal.astype(np.float64)
    direction = np.asarray(old, np.float64) - np.asarray(new, np.float64)
    share = diff @ direction / float(direction @ direction)
    return {"old_left": float(share[band].mean()), "green_left": float(diff[..., 1][band].mean()),
            "rgb_err": float(np.abs(diff)[band].mean())}


def paste(image: np.ndarray, alpha: np.ndarray, rgb) -> np.ndarray:
    a = alpha[..., None]
    return np.clip(np.round(a * image + (1 - a) * np.asarray(rgb, np.float64)), 0, 255).astype(np.uint8)


def evaluate(shots: list[dict], old, new, wrap: float, segmenter=None) -> dict[str, Any]:
    """Per shot and alpha source ('true', 'model') -> each variant's edge metrics; plus their means."""
    per_shot, crops = [], []
    for s in shots:
        shot = paste(s["image"], s["alpha"], old)
        band = (s["alpha"] > SOFT[0]) & (s["alpha"] < SOFT[1])
        alphas = {"true": s["alpha"]}
        if segmenter is not None:
            alphas["model"] = segmenter.segment(shot)
        row = {"name": s["name"], "hw": list(shot.shape[:2]), "band_px": int(band.sum())}
        for source, alpha in alphas.items():
            ideal = paste(s["image"], alpha, new)  # the photo over the new colour by the alpha used
            outs = {v: replace(shot, alpha, v, new, wrap) for v in VARIANTS}
            row[source] = {v: edge_metrics(o, ideal, band, old, new) for v, o in outs.items()}
            if source == "true":
                crops.append((s["name"], band, shot, outs, ideal))
        per_shot.append(row)
    mean = {src: {v: {k: float(np.mean([r[src][v][k] for r in per_shot])) for k in per_shot[0][src][v]}
                  for v in VARIANTS} for src in per_shot[0] if src in ("true", "model")}
    return {"per_shot": per_shot, "mean": mean, "_crops": crops}


def time_replace(hw=(480, 640), iters: int = 100) -> dict[str, Any]:
    """Per-frame cost of the replace at ``hw`` (render, alpha stage included), each variant interleaved."""
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    frame = jnp.asarray(rng.integers(0, 256, hw + (3,), dtype=np.uint8))
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    alpha = jnp.asarray(np.clip(0.5 - (np.hypot(yy - hw[0], xx - hw[1] / 2) - hw[0] * 0.6) / 10, 0, 1), jnp.float32)

    def call(variant):
        opts = options(variant, (0, 0, 255), 0.3)
        return lambda: jax.block_until_ready(render(frame, alpha, alpha, None, jnp.float32(0.0), AlphaOptions(),
                                                    opts)[0])
    timings = interleaved({v: call(v) for v in VARIANTS}, warmup=3, iters=iters)
    med = {v: timings[v]["median_ms"] for v in VARIANTS}
    best = {v: timings[v]["min_ms"] for v in VARIANTS}
    return {"hw": list(hw), "variants": timings,
            "foreground_estimate_ms": med["clean"] - med["plain"],
            "foreground_estimate_min_ms": best["clean"] - best["plain"],
            "light_wrap_ms": med["plain+wrap"] - med["plain"]}


def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2
    out = np.ascontiguousarray(img)
    for color, thick in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, thick, cv2.LINE_AA)
    return out


def _crop_at_edge(band: np.ndarray, size: int) -> tuple[slice, slice]:
    """The size x size window holding the most edge-band pixels."""
    import cv2
    h, w = band.shape
    size = min(size, h, w)
    density = cv2.blur(band.astype(np.float32), (size, size))
    half = size // 2
    density[:half], density[h - (size - half):] = -1, -1
    density[:, :half], density[:, w - (size - half):] = -1, -1
    y, x = np.unravel_index(int(np.argmax(density)), density.shape)
    return slice(y - half, y - half + size), slice(x - half, x - half + size)


def crops_figure(panels: list[tuple[str, list[tuple[str, np.ndarray]]]], band_rows: list[np.ndarray], path: Path,
                 size: int = 112, zoom: int = 2) -> None:
    """Rows of labelled, zoomed crops at each row's densest edge window -> one PNG."""
    rows = []
    for (name, images), band in zip(panels, band_rows):
        ys, xs = _crop_at_edge(band, size)
        tiles = []
        for label, img in images:
            tile = np.repeat(np.repeat(img[ys, xs], zoom, 0), zoom, 1)
            tiles.append(_label(tile, label))
            tiles.append(np.full((tile.shape[0], 4, 3), 255, np.uint8))
        rows.append(np.concatenate(tiles[:-1], axis=1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows[:-1]]
    path.write_bytes(io.encode_png(np.concatenate(rows, axis=0)))


def sample_clip(video: str, background: Optional[str], new, wrap: float, frames: int = 40) -> dict[str, Any]:
    """The sample clip through the shipped model (``frames`` frames, streaming), its last frame replaced with
    ``new`` and with ``background`` (an image) as plain / clean / clean+wrap. No ground truth: reports the mean
    luma of the outer half of the model's edge band (0.05 < a < 0.5) in the upper half of the frame (head and
    shoulders against the wall; lower down the model is unsure over the white coat), minus the new background's
    there (the old wall's light that shows: higher is a brighter halo)."""
    import cv2

    cap = cv2.VideoCapture(video)
    seg = Segmenter("mobilenet")
    frame = alpha = None
    for _ in range(frames):
        ok, bgr = cap.read()
        if not ok:
            break
        frame = np.ascontiguousarray(bgr[..., ::-1])
        alpha = seg.step(frame)
    cap.release()
    if frame is None:
        raise SystemExit(f"{video}: no frames")
    upper = np.arange(alpha.shape[0])[:, None] < alpha.shape[0] // 2
    outer = (alpha > SOFT[0]) & (alpha < 0.5) & upper
    band = (alpha > SOFT[0]) & (alpha < SOFT[1]) & upper
    luma = np.array([0.299, 0.587, 0.114])
    result: dict[str, Any] = {"video": video, "frame": frames, "outer_band_px": int(outer.sum()), "halo": {}}
    figures = {}
    backgrounds = {"color": None}
    if background:
        backgrounds["image"] = resize_cover(io.read_image(background), frame.shape[:2])
    for kind, bg in backgrounds.items():
        target = np.broadcast_to(np.asarray(new, np.uint8), frame.shape) if bg is None else bg
        images = [("frame", frame)]
        for variant in ("plain", "clean", "clean+wrap"):
            opts = CompositeOptions("color" if bg is None else "image", color=new,
                                    clean_edges=variant.startswith("clean"),
                                    light_wrap=wrap if variant.endswith("wrap") else 0.0)
            out = np.asarray(render(frame, alpha, None, bg, 0.0, AlphaOptions(), opts)[0])
            excess = (out.astype(np.float64) - target) @ luma
            result["halo"][f"{kind}/{variant}"] = float(excess[outer].mean())
            images.append((variant, out))
        figures[kind] = images
    head = band & (np.arange(alpha.shape[0])[:, None] < alpha.shape[0] // 3)  # the figure shows the hair
    result["_figures"], result["_band"] = figures, head
    return result


def darkest_background(root: str) -> Optional[str]:
    """The darkest image of ``root``/backgrounds (where a light halo shows most), or None."""
    folder = Path(root) / "backgrounds"
    if not folder.is_dir():
        return None
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return str(min(paths, key=lambda p: float(io.read_image(str(p)).mean()))) if paths else None


def to_markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    lines = ["# Old background colour left on the edge after a replace (`python -m seg_jax.bench.spill`)", "",
             f"{report['shots']} held-out soft-matte shots ({', '.join(SUBSETS)}, split {cfg['split']}) pasted "
             f"on rgb {tuple(cfg['old'])} by their true alpha, replaced with rgb {tuple(cfg['new'])}; edge band "
             f"{SOFT[0]} < true alpha < {SOFT[1]}; light wrap strength {cfg['light_wrap']}. `old_left`: share "
             "of the old colour still showing (0 = none); `green_left`, `rgb_err`: vs the ideal "
             "`a I + (1 - a) new` (the photo over the new colour by the alpha used), 8-bit levels. Light wrap "
             "moves the edge towards the new background on purpose, so its `rgb_err` is not a defect.", ""]
    for source, rows in report["mean"].items():
        lines += [f"**alpha: {source}**", "", "| variant | old_left | green_left | rgb_err |", "|---|---|---|---|"]
        for v, m in rows.items():
            lines.append(f"| {v} | {m['old_left']:.3f} | {m['green_left']:.1f} | {m['rgb_err']:.1f} |")
        lines.append("")
    t = report.get("timing")
    if t:
        lines += [f"**Cost at {t['hw'][1]}x{t['hw'][0]}** (render of the replace, median ms; "
                  f"load average {t['variants']['plain']['load_avg_before']} on {report['hardware']['cpu_count']} "
                  "CPUs shared with other jobs; variants interleaved)", "",
                  "| variant | median ms | min ms | CPU time ms (median) |", "|---|---|---|---|"]
        for v, m in t["variants"].items():
            lines.append(f"| {v} | {m['median_ms']:.2f} | {m['min_ms']:.2f} | {m.get('cpu_median_ms', 0):.2f} |")
        lines += ["", f"Foreground estimate: {t['foreground_estimate_ms']:.2f} ms per frame (clean - plain, "
                      f"medians; {t['foreground_estimate_min_ms']:.2f} ms between the minima); light wrap "
                      f"{t['light_wrap_ms']:.2f} ms.", ""]
    s = report.get("sample")
    if s:
        lines += [f"**Sample clip** (`{s['video']}`, frame {s['frame']}, shipped mobilenet alpha; color rgb "
                  f"(20, 40, 90), image `{s.get('background')}`): mean luma excess over the new background in the "
                  "outer edge band (0.05 < a < 0.5) of the upper half of the frame (the old wall's light):",
                  "", "| background / variant | luma excess (levels) |", "|---|---|"]
        lines += [f"| {k} | {v:.1f} |" for k, v in s["halo"].items()]
        lines.append("")
    if report.get("figures"):
        lines += ["Figures: " + ", ".join(f"`{p}`" for p in report["figures"]), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.bench.spill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="../shared/data", help="real data root (default ../shared/data)")
    p.add_argument("--split", default="test", choices=("test", "val"))
    p.add_argument("--limit", type=int, default=None, help="at most this many shots")
    p.add_argument("--old", type=_rgb, default=(0, 255, 0), help="the colour the people are shot on (default green)")
    p.add_argument("--new", type=_rgb, default=(0, 0, 255), help="the replacement colour (default blue)")
    p.add_argument("--light-wrap", type=float, default=0.3, help="strength for the wrap variants (default 0.3)")
    p.add_argument("--model", action="store_true", help="also with the shipped mobilenet's alpha")
    p.add_argument("--no-timing", dest="timing", action="store_false")
    p.add_argument("--sample", default=None, help="a video to show the halo on (default: the shipped sample clip)")
    p.add_argument("--background", default=None,
                   help="an image background for the sample clip (default: the darkest of DATA/backgrounds)")
    p.add_argument("--out", default="results/bench/spill.json")
    p.add_argument("--figures", default="results/figures", help="folder for the crops ('' = none)")
    args = p.parse_args(argv)
    if not 0.0 <= args.light_wrap <= 1.0:
        p.error("--light-wrap must be in [0, 1]")

    shots = soft_shots(args.data, args.split, args.limit)
    if not shots:
        print(f"no soft-matte shots under {args.data}", file=sys.stderr)
        return 2
    segmenter = None
    if args.model:
        from seg_jax.inference.segmenter import Segmenter
        segmenter = Segmenter("mobilenet")
    result = evaluate(shots, args.old, args.new, args.light_wrap, segmenter)
    crops = result.pop("_crops")
    report: dict[str, Any] = {
        "config": {"data": args.data, "split": args.split, "old": list(args.old), "new": list(args.new),
                   "light_wrap": args.light_wrap, "band": list(SOFT), "max_side": MAX_SIDE,
                   "model": "mobilenet (shipped)" if args.model else None},
        "shots": len(shots), **result, "hardware": hardware()}
    if args.timing:
        report["timing"] = time_replace()
    figures = []
    if args.figures:
        pick = sorted(crops, key=lambda c: -int(c[1].sum()))[:4]
        path = Path(args.figures) / "spill_crops.png"
        crops_figure([(name, [("green shot", shot), ("plain", outs["plain"]), ("clean", outs["clean"]),
                              (f"clean+wrap {args.light_wrap:g}", outs["clean+wrap"]), ("ideal", ideal)])
                      for name, band, shot, outs, ideal in pick], [c[1] for c in pick], path)
        figures.append(str(path))
    video = args.sample or str(Path(__file__).resolve().parents[1] / "assets" / "sample_office.mp4")
    if os.path.exists(video):
        background = args.background or darkest_background(args.data)
        sample = sample_clip(video, background, (20, 40, 90), args.light_wrap)
        sample["background"] = background and os.path.relpath(background)
        figs, band = sample.pop("_figures"), sample.pop("_band")
        if args.figures:
            path = Path(args.figures) / "spill_sample_office.png"
            crops_figure([(k, v) for k, v in figs.items()], [band] * len(figs), path, size=128)
            figures.append(str(path))
        sample["video"] = os.path.relpath(video)
        report["sample"] = sample
    report["figures"] = figures
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(to_markdown(report))
    print(to_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
