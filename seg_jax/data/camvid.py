"""CamVid street frames (``<data root>/camvid/``; see its README): every pedestrian labelled, riders and void in
``ignore/``, split by driving sequence.

Layout: ``images/camvid_<sequence>_<frame>.jpg``, ``masks/<same stem>.png`` (person 0/255) and
``ignore/<same stem>.png`` (0/255, 255 = leave the pixel out of the loss and the metrics), all at the image's size.
Which sequence is train / val / test is data: ``camvid_splits.json`` beside this module ({"train" | "val" |
"test": [sequence ids]}, "about": how it was made), written by

    python -m seg_jax.data.camvid --data_root ../shared/data --write_splits

(test = Seq05VD; val = the other sequence with the most person regions under 1 % of the frame; train = the rest).

    read_split(root, "val")   # -> [(image_path, mask_path, ignore_path)], sorted by stem
    CamVidSource(root, "train")[i]   # -> {'image': (H, W, 3), 'mask': (H, W, 1), 'ignore': (H, W, 1)} uint8

Bad input is one line (:class:`seg_jax.data.io.BadInputError`) naming the file and the fix: a frame whose mask or
ignore map is missing, an ignore map or mask of another size than its image, a split sequence with no frames.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Sequence

import numpy as np

from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import write_json
from seg_jax.data import clips, folder, io

NAME = "camvid"
SPLITS = ("train", "val", "test")
TEST_SEQUENCE = "Seq05VD"
SMALL_PERSON = 0.01          # a person region under this share of the frame counts as small (choosing val)
SPLITS_FILE = os.path.join(os.path.dirname(__file__), "camvid_splits.json")


def camvid_dir(root: str) -> str:
    """The CamVid folder: ``root/camvid`` when there is one (``root`` is the data root), else ``root`` itself
    when it holds ``images/``. BadInputError (one line) otherwise."""
    for cand in (os.path.join(root, NAME), root):
        if os.path.isdir(os.path.join(cand, "images")):
            return cand
    raise io.BadInputError(f"{os.path.join(root, NAME)}: no CamVid folder (images/, masks/, ignore/); point the "
                           "data root at ../shared/data or set data.weights.camvid=0")


def sequence_of(stem: str) -> str:
    """``camvid_<sequence>_<frame>`` -> ``<sequence>``; BadInputError for another name."""
    parts = stem.split("_")
    if len(parts) != 3 or parts[0] != NAME:
        raise io.BadInputError(f"{stem}: not a CamVid frame name (camvid_<sequence>_<frame>); rename it or move "
                               "it out of camvid/images")
    return parts[1]


def list_frames(root: str) -> dict[str, list[tuple[str, str, str]]]:
    """Every frame under the CamVid folder -> {sequence: [(image_path, mask_path, ignore_path)]}, sorted by stem.

    A frame without its mask or ignore map is an error (one line naming the missing file), never skipped: a
    sequence's frames are all or nothing."""
    base = camvid_dir(root)
    out: dict[str, list[tuple[str, str, str]]] = {}
    for stem, image in sorted(clips.images_by_stem(os.path.join(base, "images")).items()):
        mask, ignore = (os.path.join(base, kind, stem + ".png") for kind in ("masks", "ignore"))
        for kind, path in (("mask", mask), ("ignore map", ignore)):
            if not os.path.isfile(path):
                raise io.BadInputError(f"{image}: CamVid frame without its {kind} {path}; restore the file (see "
                                       f"{os.path.join(base, 'README.md')}) or remove the frame")
        out.setdefault(sequence_of(stem), []).append((image, mask, ignore))
    if not out:
        raise io.BadInputError(f"{base}/images: no CamVid frames; point the data root at ../shared/data")
    return out


def load_splits(path: str = SPLITS_FILE) -> dict[str, list[str]]:
    """The split file -> {"train" | "val" | "test": [sequence ids]} (no sequence in two splits)."""
    with open(path) as f:
        got = json.load(f)
    splits = {s: list(got[s]) for s in SPLITS}
    seen = [q for s in SPLITS for q in splits[s]]
    if len(seen) != len(set(seen)):
        raise ValueError(f"{path}: a sequence is in two splits ({splits}); rewrite it with --write_splits")
    return splits


def read_split(root: str, split: str, splits: dict[str, list[str]] | None = None) -> list[tuple[str, str, str]]:
    """(image_path, mask_path, ignore_path) of every frame of ``split``'s sequences, sorted by stem.

    ``root``: the data root (``../shared/data``) or the CamVid folder itself. ``splits``: defaults to
    ``camvid_splits.json``. A split sequence with no frame under ``root`` is an error (the data is not the one the
    split was made from).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown CamVid split {split!r}; choose one of {SPLITS}")
    frames = list_frames(root)
    wanted = (splits or load_splits())[split]
    missing = [q for q in wanted if q not in frames]
    if missing:
        raise io.BadInputError(f"{camvid_dir(root)}: no frames of the {split} sequence(s) {missing} of "
                               f"{SPLITS_FILE}; this is not the CamVid folder the split was made for")
    return sorted((t for q in wanted for t in frames[q]), key=lambda t: os.path.basename(t[0]))


def image_size(path: str) -> tuple[int, int]:
    """(width, height) from the file's header (nothing decoded)."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, ValueError) as e:
        raise io.BadInputError(f"{path}: unreadable ({type(e).__name__}); replace the file") from None


def check_sizes(frames: Sequence[tuple[str, str, str]]) -> None:
    """BadInputError (one line) for the first mask or ignore map whose size is not its image's: nothing is
    trained or scored on a misaligned label."""
    for image, mask, ignore in frames:
        size = image_size(image)
        for kind, path in (("mask", mask), ("ignore map", ignore)):
            got = image_size(path)
            if got != size:
                raise io.BadInputError(f"{path}: {kind} is {got[0]}x{got[1]} but its image {image} is "
                                       f"{size[0]}x{size[1]}; replace the {kind} with one made for this image")


class CamVidSource(folder.PairSource):
    """The frames of one split: ``source[i]`` -> {'image': uint8 (H, W, 3), 'mask': uint8 (H, W, 1), 'ignore':
    uint8 (H, W, 1), 255 = leave out}. Sizes are checked when the source is made (:func:`check_sizes`)."""
    has_ignore = True

    def __init__(self, root: str, split: str, splits: dict[str, list[str]] | None = None):
        frames = read_split(root, split, splits)
        check_sizes(frames)
        pairs = [folder.Pair(os.path.splitext(os.path.basename(i))[0], i, m) for i, m, _ in frames]
        super().__init__(pairs, f"{NAME}:{split}")
        self.ignore_paths = {i: g for i, _, g in frames}

    def _read(self, pair: folder.Pair) -> dict:
        import cv2
        example = io.read_pair(pair.image_path, pair.mask_path, self.stats)
        path = self.ignore_paths[pair.image_path]
        ignore = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        h, w = example["image"].shape[:2]
        if ignore is None or ignore.shape != (h, w):
            # not a BadInputError: PairSource would skip it; a misaligned map stops the run with one line
            raise ValueError(f"{path}: ignore map {'unreadable' if ignore is None else f'{ignore.shape[1]}x'}"
                             f"{'' if ignore is None else ignore.shape[0]} for a {w}x{h} image; replace it")
        return {**example, "ignore": np.where(ignore >= 128, 255, 0).astype(np.uint8)[:, :, None]}


def small_people(mask_path: str, small: float = SMALL_PERSON) -> int:
    """Connected person regions (8-connectivity, mask >= 128) under ``small`` of the frame in one mask."""
    import cv2
    mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise io.BadInputError(f"{mask_path}: unreadable mask; replace the file")
    n, _, stats, _ = cv2.connectedComponentsWithStats((mask >= 128).astype(np.uint8), connectivity=8)
    return int((stats[1:, cv2.CC_STAT_AREA] < small * mask.size).sum())


def choose_splits(root: str, test: str = TEST_SEQUENCE) -> dict:
    """test = ``test``; val = the other sequence with the most small person regions; train = the rest.
    -> {"train", "val", "test": [ids], "about": {"small_people": {sequence: count}, "frames": {...}}}."""
    frames = list_frames(root)
    if test not in frames:
        raise io.BadInputError(f"{camvid_dir(root)}: no frames of the test sequence {test}; check the data root")
    counts = {q: sum(small_people(m) for _, m, _ in fs) for q, fs in sorted(frames.items())}
    val = max((q for q in counts if q != test), key=lambda q: (counts[q], q))
    return {"train": sorted(q for q in frames if q not in (test, val)), "val": [val], "test": [test],
            "about": {"small_people": counts, "frames": {q: len(fs) for q, fs in sorted(frames.items())},
                      "rule": f"test {test}; val: the other sequence with the most person regions under "
                              f"{SMALL_PERSON:.0%} of the frame (8-connected, mask >= 128); train: the rest"}}


def read_ignore(path: str, hw: tuple[int, int]) -> np.ndarray:
    """An ignore map -> uint8 (H, W, 1), 255 = left out. It must be exactly the image's size ``hw`` (no resizing:
    a map of another size does not belong to this frame): BadInputError naming the file and both sizes."""
    ignore = io.mask_from_array(io.decode(io.read_bytes(path), path), path, None)
    if ignore.shape[:2] != tuple(hw):
        raise io.BadInputError(f"{path}: ignore map is {ignore.shape[1]}x{ignore.shape[0]} but its image is "
                               f"{hw[1]}x{hw[0]}; it belongs to another image: restore the right file")
    return np.where(ignore >= 128, 255, 0).astype(np.uint8)


def heldout_files(root: str, split: str) -> list[dict]:
    """The held-out frames for full-resolution scoring: [{'name', 'image_path', 'mask_path', 'ignore_path',
    'sequence': ''}] (frames are about 1 s apart: scored as stills, no state carried)."""
    return [{"name": os.path.splitext(os.path.basename(i))[0], "image_path": i, "mask_path": m, "ignore_path": g,
             "sequence": ""} for i, m, g in read_split(root, split)]


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m seg_jax.data.camvid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_root", default="../shared/data")
    p.add_argument("--write_splits", action="store_true", help=f"(re)write {SPLITS_FILE}")
    a = p.parse_args(argv)
    try:
        if a.write_splits:
            splits = choose_splits(a.data_root)
            splits["about"]["command"] = "python -m seg_jax.data.camvid " + " ".join(
                shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
            write_json(SPLITS_FILE, splits, indent=1)
            print(f"wrote {SPLITS_FILE}: {json.dumps({s: splits[s] for s in SPLITS})}")
        for split in SPLITS:
            frames = read_split(a.data_root, split)
            check_sizes(frames)
            print(f"{split:5s} {len(frames):4d} frames")
    except (ValueError, OSError) as e:
        fail("seg_jax.data.camvid", str(e))


if __name__ == "__main__":
    main()

