"""The val readings of the issue-46 retrain arms (research/issue46_retrain.sh RUN=...), one row per evaluation:
per-source Dice loss at 256x256, the person recall pooled over people + DAVIS + CamVid (1 - person_miss) and the
false-person share on the person-free photos, from each run's metrics_val.csv.

    python -m research.issue46_arms [--workdirs workdirs] > table.md
"""
from __future__ import annotations

import argparse
import csv
import os

ARMS = (("long", "mobilenet_issue46_long", "policy + CamVid 0.3 + negatives 0.1, batch Dice, lr 2e-4"),
        ("recall", "mobilenet_issue46_recall", "the same, Dice per image, lr 1e-4"),
        ("people", "mobilenet_issue46_people", "the same without person-free images"),
        ("policy", "mobilenet_issue46_policy", "the same without CamVid: the label policy alone"),
        ("frozenbn", "mobilenet_issue46_frozenbn", "'recall' with BatchNorm on the shipped statistics"),
        ("policyneg", "mobilenet_issue46_policyneg", "the label policy and the negatives, no CamVid"))
SOURCES = ("portraits", "selfies", "people", "fullbody", "davis", "camvid")


def rows(workdirs: str):
    for arm, folder, what in ARMS:
        path = os.path.join(workdirs, folder, "metrics_val.csv")
        if not os.path.isfile(path):
            continue
        with open(path) as f:
            for r in csv.DictReader(f):
                yield arm, what, r


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="research.issue46_arms", description=__doc__.splitlines()[0])
    p.add_argument("--workdirs", default="workdirs")
    a = p.parse_args(argv)
    print("| arm | step | " + " | ".join(SOURCES) + " | person recall | false person (negatives) |")
    print("|---|---|" + "---|" * (len(SOURCES) + 2))
    for arm, _, r in rows(a.workdirs):
        cells = [f"{float(r['dice_loss_' + s]):.4f}" for s in SOURCES]
        print(f"| {arm} | {r['step']} | " + " | ".join(cells)
              + f" | {1 - float(r['person_miss']):.3f} | {float(r['false_person_negatives']):.4f} |")
    print()
    for arm, folder, what in ARMS:
        print(f"- `{arm}` (`RUN={arm}`, `workdirs/{folder}`): {what}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
