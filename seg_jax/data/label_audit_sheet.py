"""A contact sheet of a sample of the label audit's flagged regions, to look at (are the labels or the teachers wrong?).

Each tile: the image cropped around one flagged region (left), and the same crop with the label's outline in green
and the ignored pixels tinted (right): red = missed person (both teachers say person, the label background),
blue = extra person (both say background, the label person). Caption: source, direction, file.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from seg_jax.data.io import read_pair

PANEL = 150
CAPTION = 16
COLOURS = {"missed_person": (255, 40, 40), "extra_person": (40, 90, 255)}


def sample_regions(index: Mapping[str, Mapping[str, Any]], samples: int, seed: int = 0) -> list[tuple]:
    """(source, key, entry, direction, region) spread over sources and directions, seeded."""
    groups: dict[tuple[str, str], list[tuple]] = {}
    for source, flagged in index.items():
        for key, entry in sorted(flagged.items()):
            for direction in COLOURS:
                for region in entry.get(direction, []):
                    groups.setdefault((source, direction), []).append((source, key, entry, direction, region))
    rng = random.Random(seed)
    for items in groups.values():
        rng.shuffle(items)
    picked, order = [], sorted(groups)
    while len(picked) < samples and any(groups.values()):
        for g in order:
            if groups[g] and len(picked) < samples:
                picked.append(groups[g].pop())
    return picked


def _tile(entry: Mapping[str, Any], direction: str, region: Mapping[str, Any], ignore: np.ndarray | None,
          caption: str) -> np.ndarray:
    import cv2

    pair = read_pair(entry["image_path"], entry["mask_path"])
    image, label = pair["image"], pair["mask"][..., 0] >= 128
    h, w = label.shape
    x, y, bw, bh = region["bbox"]
    side = int(max(bw, bh) * 1.6) + 16
    cx, cy = x + bw // 2, y + bh // 2
    x0, y0 = max(0, min(w - side, cx - side // 2)), max(0, min(h - side, cy - side // 2))
    x1, y1 = min(w, x0 + side), min(h, y0 + side)
    crop = image[y0:y1, x0:x1]
    over = crop.astype(np.float32)
    if ignore is not None:
        m = ignore[y0:y1, x0:x1]
        over[m] = 0.5 * over[m] + 0.5 * np.asarray(COLOURS[direction], np.float32)
    over = over.astype(np.uint8)
    contours, _ = cv2.findContours(label[y0:y1, x0:x1].astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(over, contours, -1, (0, 255, 0), max(1, crop.shape[0] // PANEL))

    def fit(a: np.ndarray) -> np.ndarray:
        s = PANEL / max(a.shape[:2])
        a = cv2.resize(a, (max(1, int(a.shape[1] * s)), max(1, int(a.shape[0] * s))), interpolation=cv2.INTER_AREA)
        canvas = np.zeros((PANEL, PANEL, 3), np.uint8)
        canvas[:a.shape[0], :a.shape[1]] = a
        return canvas
    tile = np.zeros((PANEL + CAPTION, 2 * PANEL + 4, 3), np.uint8)
    tile[CAPTION:, :PANEL], tile[CAPTION:, PANEL + 4:] = fit(crop), fit(over)
    cv2.putText(tile, caption[:48], (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(index: Mapping[str, Mapping[str, Any]], path: Path, *, samples: int = 24, columns: int = 4,
                  audit_dir: Path | None = None, seed: int = 0) -> int:
    """Write the sheet of ``samples`` regions to ``path`` (PNG). -> the number of tiles."""
    import cv2
    picked = sample_regions(index, samples, seed)
    if not picked:
        return 0
    tiles = []
    for source, key, entry, direction, region in picked:
        ignore = None
        if audit_dir is not None and (Path(audit_dir) / source / key).exists():
            ignore = cv2.imread(str(Path(audit_dir) / source / key), cv2.IMREAD_GRAYSCALE) >= 128
        short = "missed" if direction == "missed_person" else "extra"
        tiles.append(_tile(entry, direction, region, ignore, f"{source} {short} {Path(key).stem}"))
    while len(tiles) % columns:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.concatenate(tiles[i:i + columns], axis=1) for i in range(0, len(tiles), columns)]
    sheet = np.concatenate(rows, axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return len(picked)
