"""Does the ship rule refuse a candidate, on the widened val split and on the old one? (issue 46)

  python -m research.recall_guard_split CANDIDATE.json SHIPPED.json --out results/ship-rule/NAME

Both files are ``seg_jax.evaluate --split val`` outputs on the widened val split (``seg_jax.data.heldout_val``).
The old split is cut out of them (no files re-scored): the first :data:`OLD_PEOPLE_VAL` people photos, the DAVIS
clip ``rollerblade`` alone (:data:`OLD_DAVIS_FRAMES`), no CamVid. Each split gets
:func:`seg_jax.evaluation.ship_rule.decide` once with the person-recall guard and once without it (the rule before
issue 46: Dice per source and false people only).
-> ``NAME.json`` ({split: {rule: decision}}) and ``NAME.md``.
"""
from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

from seg_jax.evaluation import ship_rule

OLD_PEOPLE_VAL = 20          # the people val list's first 20 stems are the old ones (heldout_val appends)
OLD_DAVIS_FRAMES = 35        # rollerblade's frames: the first clip of the widened DAVIS val list


def old_split(evaluation: dict) -> dict:
    """``evaluation`` with its seg_jax row cut to the old val files (per-image lists sliced, CamVid dropped)."""
    out = copy.deepcopy(evaluation)
    full = next(r for r in out["results"] if not r.get("peer"))["full_res"]
    full.pop("camvid", None)
    for source, keep in (("people", OLD_PEOPLE_VAL), ("davis", OLD_DAVIS_FRAMES)):
        full[source]["per_image"] = {k: v[:keep] for k, v in full[source]["per_image"].items()
                                     if k != "person_free_region_share"}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m research.recall_guard_split", description=__doc__.split("\n")[0])
    parser.add_argument("candidate")
    parser.add_argument("shipped")
    parser.add_argument("--out", required=True, help="output path without suffix")
    args = parser.parse_args(argv)
    candidate, shipped = (json.loads(Path(p).read_text()) for p in (args.candidate, args.shipped))
    splits = {"widened val": (candidate, shipped), "old val": (old_split(candidate), old_split(shipped))}
    out, lines = {"candidate": args.candidate, "shipped": args.shipped}, []
    for name, (c, s) in splits.items():
        full, before = ship_rule.decide(c, s), ship_rule.decide(c, s, recall_guard=False)
        out[name] = {"with recall guard": full, "rule before issue 46": before}
        lines += [f"## {name}", "", ship_rule.to_markdown(full, (Path(args.candidate).stem, Path(args.shipped).stem)),
                  f"Rule before issue 46 (no recall guard): **{'ship' if before['ship'] else 'do not ship'}** "
                  f"({before['why']})", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(json.dumps(out, indent=2) + "\n")
    Path(args.out + ".md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
