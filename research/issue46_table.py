"""Print the issue-46 val comparison (full resolution) as a Markdown table from ``seg_jax.evaluate`` JSONs.

    python -m research.issue46_table results/archive/eval-val/mobilenet-issue39-soup25.json \
        results/ship-rule/issue46-evals/mobilenet-issue46-*.json

Columns: per person source the full-resolution Dice (DAVIS: pooled Dice and flicker), on the person-free photos
the false-person pixel share and the share of images flagged with a person.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

STILLS = ("portraits", "selfies", "people", "fullbody")


def row(path: str) -> str:
    r = json.loads(Path(path).read_text())["results"][0]
    full = r["full_res"]
    cells = [f"{full[s]['dice']:.4f}" if s in full else "-" for s in STILLS]
    davis = full.get("davis", {})
    cells.append(f"{davis['dice']:.4f} / {davis.get('flicker', float('nan')):.4f}" if davis else "-")
    neg = full.get("negatives", {})
    cells.append(f"{neg['false_person']:.4f} / {neg['false_person_images']:.3f}" if neg else "-")
    return f"| `{Path(path).stem}` ({r['checkpoint']}) | " + " | ".join(cells) + " |"


def main(paths: list[str]) -> None:
    print("| weights | " + " | ".join(STILLS) + " | davis Dice / flicker | negatives false person px / images |")
    print("|---|" + "---|" * (len(STILLS) + 2))
    for p in paths:
        print(row(p))


if __name__ == "__main__":
    main(sys.argv[1:])
