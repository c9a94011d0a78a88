"""The ship rule: may a candidate's weights replace the shipped ones? One rule, written once, with the noise in view.

  python -m seg_jax.ship_rule workdirs/eval-val-candidate.json workdirs/eval-val-shipped.json \
      --out results/ship-rule/<name>.json

Both files are ``seg_jax.evaluation.evaluate`` outputs on the SAME split and files (full resolution, ``per_image``
scores).
The val splits are small (10 to 60 images a source, one DAVIS clip), so a difference of a few thousandths can
be noise. Per person source, the paired difference of per-image Dice (candidate - shipped) gets a percentile
bootstrap interval (images resampled with replacement; video frames in blocks of :data:`VIDEO_BLOCK`
consecutive frames, since neighbouring frames are not independent). On the person-free photos the paired
difference is the per-image false-person share (shipped - candidate: positive = fewer false people).

Person recall (:mod:`seg_jax.evaluation.person_recall`) is pooled over the people-centric sources
(:data:`RECALL_SOURCES`: small, many and partly hidden people, where a per-source Dice averages a lost bystander
away): the paired difference is (people found by the candidate - people found by the shipped weights) / people,
summed over the sources, with each source's images (video in blocks) resampled together for the interval.

The candidate ships when it holds everything and gains something:
1. no person source is worse beyond its interval (the interval's upper end is not below 0), and
2. the false-person share on the person-free photos is not worse beyond its interval, and the share of
   person-free images flagged with a person is not higher, and
3. person recall on the pooled people-centric sources does not drop beyond its interval (upper end not below 0;
   both evaluations must have scored it), and
4. at least one of them is better beyond its interval (lower end above 0): a person source's Dice, the
   false-person share, or the pooled person recall.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from seg_jax.common.args import OneLineParser
from seg_jax.common.exit_codes import USER_ERROR
from seg_jax.common.writer import OutputError, check_folder, check_output, write_json, write_text
from seg_jax.evaluation.person_recall import PEOPLE_CENTRIC

CONFIDENCE = 0.95
RESAMPLES = 4000
VIDEO_BLOCK = 8
VIDEO_SOURCES = ("davis",)
NEGATIVE_SOURCES = ("negatives",)
RECALL_SOURCES = PEOPLE_CENTRIC


def paired_bootstrap(candidate: Sequence[float], baseline: Sequence[float], *, block: int = 1,
                     resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0) -> dict[str, float]:
    """Mean of ``candidate - baseline`` (paired, same order) and its percentile bootstrap interval.

    ``block`` > 1 resamples runs of that many consecutive items (moving blocks) instead of single items.
    -> {'difference', 'low', 'high', 'n'}.
    """
    c, b = np.asarray(candidate, np.float64), np.asarray(baseline, np.float64)
    if c.shape != b.shape or c.ndim != 1 or not len(c):
        raise ValueError(f"paired scores must be two equal, non-empty lists (got {c.shape} and {b.shape}); "
                         "evaluate both weights on the same split and files")
    diff = c - b
    means = diff[_resample(len(diff), block, resamples, np.random.default_rng(seed))].mean(axis=1)
    tail = (1 - confidence) / 2
    return {"difference": float(diff.mean()), "low": float(np.quantile(means, tail)),
            "high": float(np.quantile(means, 1 - tail)), "n": int(len(diff))}


def _resample(n: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) indices into n items: moving blocks of ``block`` consecutive items, drawn with replacement."""
    block = max(1, min(int(block), n))
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    return (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]


def pooled_recall_bootstrap(sources: Mapping[str, Mapping[str, Sequence[float]]], *, resamples: int = RESAMPLES,
                            confidence: float = CONFIDENCE, seed: int = 0) -> dict[str, float]:
    """Paired difference of person recall pooled over sources, and its percentile bootstrap interval.

    ``sources``: {name: {'found_candidate', 'found_shipped', 'people': per-image counts (same order), 'block': int}}.
    Each resample draws every source's images (in blocks of its 'block') and pools the sums:
    (sum found_candidate - sum found_shipped) / sum people. -> {'difference', 'low', 'high', 'n' (images),
    'people', 'recall_candidate', 'recall_shipped'}.
    """
    rng = np.random.default_rng(seed)
    found_c, found_b, people = np.zeros(resamples), np.zeros(resamples), np.zeros(resamples)
    totals = np.zeros(3)
    images = 0
    for name, s in sources.items():
        arrays = [np.asarray(s[k], np.float64) for k in ("found_candidate", "found_shipped", "people")]
        if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 1 or not len(arrays[0]):
            raise ValueError(f"{name}: per-image people counts must be equal, non-empty lists; evaluate both "
                             "weights on the same split and files")
        idx = _resample(len(arrays[0]), int(s.get("block", 1)), resamples, rng)
        found_c += arrays[0][idx].sum(axis=1)
        found_b += arrays[1][idx].sum(axis=1)
        people += arrays[2][idx].sum(axis=1)
        totals += [a.sum() for a in arrays]
        images += len(arrays[0])
    if totals[2] <= 0:
        raise ValueError("no labelled people on the people-centric sources; person recall is undefined there")
    diffs = (found_c - found_b) / np.maximum(people, 1)
    tail = (1 - confidence) / 2
    return {"difference": float((totals[0] - totals[1]) / totals[2]), "low": float(np.quantile(diffs, tail)),
            "high": float(np.quantile(diffs, 1 - tail)), "n": int(images), "people": int(totals[2]),
            "recall_candidate": float(totals[0] / totals[2]), "recall_shipped": float(totals[1] / totals[2])}


def person_recall_guard(cand: Mapping, base: Mapping) -> dict:
    """The pooled person-recall interval of two ``full_res`` dicts over the :data:`RECALL_SOURCES` both have,
    with 'sources' (those pooled) and 'refuse' (True when recall drops beyond the interval, or was not scored:
    'why' says which)."""
    pooled = {}
    for source in (s for s in RECALL_SOURCES if s in cand and s in base):
        c, b = cand[source].get("per_image") or {}, base[source].get("per_image") or {}
        if "people" not in c or "people" not in b:
            continue
        if list(c["people"]) != list(b["people"]):
            raise ValueError(f"{source}: the two evaluations count different people per image; evaluate both "
                             "weights on the same split and files")
        pooled[source] = {"found_candidate": c["people_found"], "found_shipped": b["people_found"],
                          "people": c["people"], "block": VIDEO_BLOCK if source in VIDEO_SOURCES else 1}
    if not pooled or not sum(sum(p["people"]) for p in pooled.values()):
        return {"sources": [], "refuse": True,
                "why": f"no person recall scored on {', '.join(RECALL_SOURCES)} (rerun python -m "
                       "seg_jax.evaluate on both weights: it scores recall per image)"}
    out = {"sources": list(pooled), "metric": "person recall, pooled (candidate - shipped)",
           **pooled_recall_bootstrap(pooled),
           "by_source": {s: {"people": int(sum(p["people"])),
                             "recall_candidate": sum(p["found_candidate"]) / max(1, sum(p["people"])),
                             "recall_shipped": sum(p["found_shipped"]) / max(1, sum(p["people"]))}
                         for s, p in pooled.items()}}
    out["refuse"] = out["high"] < 0
    out["why"] = f"person recall on the pooled {', '.join(pooled)} drops beyond its interval" if out["refuse"] else ""
    return out


def _model_row(evaluation: Mapping) -> Mapping:
    rows = [r for r in evaluation.get("results", []) if not r.get("peer")]
    if not rows:
        raise ValueError("no seg_jax model in this evaluation file")
    return rows[0]


def decide(candidate: Mapping, baseline: Mapping, recall_guard: bool = True) -> dict:
    """Two ``seg_jax.evaluation.evaluate`` JSON dicts -> per-source intervals and the decision
    ({'ship': bool, 'why': str}). ``recall_guard`` False: the rule without condition 3 (to compare)."""
    cand, base = _model_row(candidate)["full_res"], _model_row(baseline)["full_res"]
    sources = [s for s in cand if s in base]
    if not sources:
        raise ValueError("the two evaluations share no source; evaluate both on the same split")
    out: dict = {"sources": {}, "confidence": CONFIDENCE, "resamples": RESAMPLES}
    worse, better, negatives_ok, negatives_why, reasons = [], [], None, "", []
    for source in sources:
        c, b = cand[source].get("per_image"), base[source].get("per_image")
        if not c or not b:
            raise ValueError(f"{source}: no per-image scores; rerun seg_jax.evaluation.evaluate (full resolution)")
        if source in NEGATIVE_SOURCES:
            interval = paired_bootstrap(b["false_person_share"], c["false_person_share"])
            flagged = (cand[source].get("false_person_images"), base[source].get("false_person_images"))
            negatives_ok = interval["high"] >= 0 and (flagged[0] or 0) <= (flagged[1] or 0)
            negatives_why = ("more false people on the person-free photos beyond the interval"
                             if interval["high"] < 0 else
                             f"more person-free photos flagged ({flagged[0] or 0:.3f} vs {flagged[1] or 0:.3f})")
            if interval["low"] > 0:
                better.append("fewer false people")
            out["sources"][source] = {"metric": "false_person_share (shipped - candidate)", **interval,
                                      "flagged_candidate": flagged[0], "flagged_shipped": flagged[1]}
            continue
        interval = paired_bootstrap(c["dice"], b["dice"], block=VIDEO_BLOCK if source in VIDEO_SOURCES else 1)
        out["sources"][source] = {"metric": "image dice (candidate - shipped)", **interval}
        if interval["high"] < 0:
            worse.append(source)
        if interval["low"] > 0:
            better.append(f"{source} Dice")
    if worse:
        reasons.append(f"worse beyond the interval on {', '.join(worse)}")
    if negatives_ok is None:
        reasons.append("no person-free photos scored (evaluate with the negatives subset)")
    elif not negatives_ok:
        reasons.append(negatives_why)
    if recall_guard:
        out["recall"] = person_recall_guard(cand, base)
        if out["recall"]["refuse"]:
            reasons.append(out["recall"]["why"])
        elif out["recall"].get("low", 0) > 0:
            better.append("person recall")
    if not reasons and not better:
        reasons.append("nothing better beyond its interval (no person source's Dice, false people or person "
                       "recall)")
    out["better"] = better
    out["ship"] = not reasons
    out["why"] = "; ".join(reasons) if reasons else (
        "no source worse beyond its interval" + (", person recall held" if recall_guard else "")
        + "; better: " + ", ".join(better))
    return out


def to_markdown(result: Mapping, names: tuple[str, str] = ("candidate", "shipped")) -> str:
    lines = [f"**Ship rule** ({names[0]} vs {names[1]}; paired bootstrap, {int(100 * result['confidence'])} % "
             f"intervals, {result['resamples']} resamples)", "",
             "| Source | Paired metric | Difference | Interval | n |", "|---|---|---|---|---|"]
    for source, r in result["sources"].items():
        lines.append(f"| {source} | {r['metric']} | {r['difference']:+.4f} | [{r['low']:+.4f}, {r['high']:+.4f}] "
                     f"| {r['n']} |")
    recall = result.get("recall") or {}
    if recall.get("sources"):
        lines.append(f"| {' + '.join(recall['sources'])} | {recall['metric']}: {recall['recall_candidate']:.4f} vs "
                     f"{recall['recall_shipped']:.4f} of {recall['people']} people | {recall['difference']:+.4f} | "
                     f"[{recall['low']:+.4f}, {recall['high']:+.4f}] | {recall['n']} |")
        lines += ["", "Person recall by source (candidate vs shipped): " + "; ".join(
            f"{s} {r['recall_candidate']:.4f} vs {r['recall_shipped']:.4f} ({r['people']} people)"
            for s, r in recall["by_source"].items())]
    lines += ["", f"**Decision: {'ship' if result['ship'] else 'do not ship'}** ({result['why']})", ""]
    return "\n".join(lines)


SHIP_SPLIT = "val"   # the rule decides on the validation split; the test split stays for the final report


def read_evaluation(path: str) -> dict:
    """A ``seg_jax.evaluation.evaluate`` JSON file -> its dict, or a one-line ValueError naming the file and the
    fix (missing, unreadable, not JSON, truncated, not an evaluation, no seg_jax row)."""
    fix = "give the JSON that python -m seg_jax.evaluate wrote"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file (binary data); {fix}") from None
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}; {fix}") from None
    try:
        evaluation = json.loads(text)
    except ValueError as e:
        what = "is empty" if not text.strip() else f"is not valid JSON ({e}; truncated or damaged?)"
        raise ValueError(f"{path} {what}; {fix}") from None
    if not isinstance(evaluation, dict) or not isinstance(evaluation.get("results"), list):
        kind = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(
            type(evaluation), "null")
        got = "no 'results' list" if isinstance(evaluation, dict) else f"a JSON {kind}"
        raise ValueError(f"{path} is not an evaluation ({got}); {fix}")
    try:
        _model_row(evaluation)
    except (ValueError, AttributeError):
        raise ValueError(f"{path} has no seg_jax model row; {fix}") from None
    return evaluation


def check_splits(paths: Sequence[str], evaluations: Sequence[Mapping]) -> None:
    """Both evaluations were made on the validation split (the test split is never decided on: choosing weights
    by it would spend the held-out set); else a one-line ValueError naming the file, its split and the fix."""
    for path, evaluation in zip(paths, evaluations):
        split = _model_row(evaluation).get("split", SHIP_SPLIT)   # evaluate records it; a hand-made file may not
        if split != SHIP_SPLIT:
            raise ValueError(f"{path} was evaluated on the {split!r} split; the ship rule decides on "
                             f"{SHIP_SPLIT!r} only (rerun python -m seg_jax.evaluate --split {SHIP_SPLIT})")
    names = [sorted(_model_row(e).get("full_res", {})) for e in evaluations]
    if names[0] != names[1]:
        raise ValueError(f"{paths[0]} and {paths[1]} score different sources ({names[0]} vs {names[1]}); "
                         "evaluate both weights on the same split and sources")


def main(argv=None) -> int:
    """Read both evaluations, decide, print the table and write it (``--out``: JSON and .md beside it) through the
    shared writer; -> the exit code (2 with one line for every problem a user can fix)."""
    parser = OneLineParser(prog="python -m seg_jax.ship_rule", description=__doc__.split("\n")[0])
    parser.add_argument("candidate", help="seg_jax.evaluation.evaluate JSON of the candidate weights")
    parser.add_argument("shipped", help="seg_jax.evaluation.evaluate JSON of the shipped weights, same split")
    parser.add_argument("--out", help="write the result here as JSON (and .md beside it)")
    args = parser.parse_args(argv)
    paths = (args.candidate, args.shipped)
    outs = [Path(args.out), Path(args.out).with_suffix(".md")] if args.out else []
    try:
        for out in outs:   # before anything is computed: never over an input, never into a read-only place
            check_output(out, inputs=paths, option="--out")
        if outs:
            check_folder(outs[0].parent, outs[0].name, "--out")
        evaluations = [read_evaluation(p) for p in paths]
        check_splits(paths, evaluations)
        result = decide(*evaluations)
    except (ValueError, KeyError, TypeError, OutputError) as e:
        print(f"seg_jax.ship_rule: error: {e}", file=sys.stderr)
        return USER_ERROR
    markdown = to_markdown(result, (Path(args.candidate).stem, Path(args.shipped).stem))
    print(markdown)
    if outs:
        try:
            write_json(outs[0], {"candidate": args.candidate, "shipped": args.shipped, **result}, inputs=paths,
                       option="--out")
            write_text(outs[1], markdown, inputs=paths, option="--out")
        except OutputError as e:
            print(f"seg_jax.ship_rule: error: {e}", file=sys.stderr)
            return USER_ERROR
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
