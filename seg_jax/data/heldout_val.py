"""The val split that can see a loss of people: rewrite ``heldout_splits.json``'s val lists, test untouched.

  python -m seg_jax.data.heldout_val --data_root ../shared/data            # show what would change
  python -m seg_jax.data.heldout_val --data_root ../shared/data --write    # write heldout_splits.json

Two rotations, both from train into val (the test lists are checked unchanged, so test numbers stay comparable):
- DAVIS: the val clips become :data:`DAVIS_VAL`: ``rollerblade`` plus the two breakdance clips (a dancer with an
  unlabelled crowd around: the kind of busy scene the hard negatives cost), kept together since they are
  near-duplicates of one scene;
- people: the first :data:`EXTRA_MULTI_PERSON` train photos holding at least two people (connected person regions,
  :func:`seg_jax.evaluation.person_recall.recall_counts`), in SHA-1 order of the stem, join the val list.
CamVid's val sequence is in ``camvid_splits.json`` (:mod:`seg_jax.data.camvid`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

from seg_jax.common.writer import write_json
from seg_jax.data import folder, io
from seg_jax.evaluation.person_recall import recall_counts

SPLITS_FILE = os.path.join(os.path.dirname(__file__), "heldout_splits.json")
DAVIS_VAL = ("rollerblade", "breakdance", "breakdance-flare")
EXTRA_MULTI_PERSON = 10


def multi_person_stems(root: str, count: int, test: list[str]) -> list[str]:
    """The first ``count`` people/ stems outside ``test`` (SHA-1 order) whose mask holds at least two people (the
    same stems before and after a rotation: the original val photos each hold one person)."""
    found, held = [], set(test)
    listed = [p for p in folder.list_pairs(os.path.join(root, "people")) if p.stem not in held]
    for pair in sorted(listed, key=lambda p: hashlib.sha1(p.stem.encode()).hexdigest()):
        mask = io.read_mask(pair.mask_path)
        if recall_counts(mask, mask)["people"] >= 2:
            found.append(pair.stem)
        if len(found) == count:
            break
    return found


def rotated(splits: dict, root: str) -> dict:
    """``splits`` (the held-out JSON) -> a copy with the val rotations applied (ValueError if a test list would
    change). Running it on its own output changes nothing."""
    out = json.loads(json.dumps(splits))
    davis_test = set(out["davis"]["test"])
    if davis_test & set(DAVIS_VAL):
        raise ValueError(f"DAVIS_VAL {DAVIS_VAL} overlaps the test clips {sorted(davis_test)}")
    out["davis"]["val"] = list(DAVIS_VAL)
    extra = [s for s in multi_person_stems(root, EXTRA_MULTI_PERSON, out["people"]["test"])
             if s not in out["people"]["val"]]
    out["people"]["val"] = out["people"]["val"] + extra
    for subset in out:
        if out[subset]["test"] != splits[subset]["test"]:
            raise ValueError(f"{subset}: the test split would change; it must stay fixed")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seg_jax.data.heldout_val", description=__doc__.split("\n")[0])
    parser.add_argument("--data_root", default="../shared/data", help="the real data root (holds people/, davis/)")
    parser.add_argument("--write", action="store_true", help=f"write {SPLITS_FILE}")
    args = parser.parse_args(argv)
    with open(SPLITS_FILE) as f:
        splits = json.load(f)
    try:
        new = rotated(splits, args.data_root)
    except (ValueError, OSError) as e:
        print(f"seg_jax.data.heldout_val: error: {e}", file=sys.stderr)
        return 2
    for subset in new:
        added = [s for s in new[subset]["val"] if s not in splits[subset]["val"]]
        if added:
            print(f"{subset}: val {len(splits[subset]['val'])} -> {len(new[subset]['val'])} (+ {', '.join(added)})")
    if args.write:
        write_json(SPLITS_FILE, new, indent=1)
        print(f"wrote {SPLITS_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
