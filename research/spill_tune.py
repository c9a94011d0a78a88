"""``python -m research.spill_tune``: how the foreground estimate's settings were chosen (val split only).

Runs the clean replace of :mod:`seg_jax.bench.spill` (true alpha, green shot, blue replacement) on the val
split's soft-matte shots for a few values of :data:`seg_jax.ops.foreground.LAM` and ``POWER``, the wide radius,
and the paper's fixed per-pixel step in place of the solve; writes a markdown table. The settings are module
constants read when the replace is traced, so each row clears JAX's caches and sets them.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from seg_jax.bench import spill


def _paper_step(image, alpha, f_s, b_s):
    import jax.numpy as jnp
    return jnp.clip(f_s + alpha * (image - alpha * f_s - (1.0 - alpha) * b_s), 0.0, 1.0)


def rows():
    """(label, settings) for each row; settings name foreground module attributes to set."""
    from seg_jax.ops import foreground as fg
    base = {"LAM": fg.LAM, "POWER": fg.POWER, "WIDE_DIVISOR": fg.WIDE_DIVISOR, "LOCAL_B": fg.LOCAL_B,
            "_correct": fg._correct}
    grid = [{}]
    grid += [{"LAM": lam} for lam in (0.2, 0.02, 0.01)]
    grid += [{"POWER": power} for power in (1, 6)]
    grid += [{"WIDE_DIVISOR": d, "LOCAL_B": local} for d in (8, 16, 32) for local in (False, True)]
    grid += [{"LOCAL_B": False, "_correct": _paper_step}, {"LOCAL_B": False, "POWER": 1, "_correct": _paper_step}]
    out = [("plain (frame blended)", None)]
    seen = set()
    for change in grid:
        settings = {**base, **change}
        label = ", ".join(f"{k} {settings[k]}" for k in ("LAM", "POWER", "WIDE_DIVISOR", "LOCAL_B"))
        label += ", paper step a (I - a F_s - (1 - a) B_s)" if settings["_correct"] is _paper_step else ", solve"
        if label not in seen:
            seen.add(label)
            out.append((label + (" (shipped)" if not change else ""), settings))
    return out, base


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m research.spill_tune", description=__doc__)
    p.add_argument("--data", default="../shared/data")
    p.add_argument("--limit", type=int, default=12)
    p.add_argument("--out", default="results/tuning/spill-tuning-val.md")
    args = p.parse_args(argv)
    import jax

    from seg_jax.ops import foreground as fg
    old, new = (0, 255, 0), (0, 0, 255)
    shots = spill.soft_shots(args.data, "val", args.limit)
    prepared = [(spill.paste(s["image"], s["alpha"], old), spill.paste(s["image"], s["alpha"], new),
                 (s["alpha"] > spill.SOFT[0]) & (s["alpha"] < spill.SOFT[1]), s["alpha"]) for s in shots]
    # the same people shot in a real (textured) room instead of on the flat colour
    from seg_jax.data import io
    from seg_jax.live.sources import resize_cover
    rooms = sorted(p for p in (Path(args.data) / "backgrounds").iterdir() if p.name.startswith("rooms_"))
    in_rooms = [(spill.paste(s["image"], s["alpha"], resize_cover(io.read_image(str(rooms[i % len(rooms)])),
                                                                  s["image"].shape[:2])),) + prep[1:]
                for i, (s, prep) in enumerate(zip(shots, prepared))]
    table, base = rows()
    lines = [f"# Foreground estimate settings on the val split ({len(shots)} soft-matte shots, "
             "`python -m research.spill_tune`)", "",
             "Green shot by the true alpha, replaced with blue; metrics as in `results/bench/spill.md`. "
             "`rgb_err room`: the same people pasted into photos of rooms (`backgrounds/rooms_*`, a textured old "
             "background) instead of the green, then replaced with blue.", "",
             "| setting | old_left | green_left | rgb_err | rgb_err room |", "|---|---|---|---|---|"]
    try:
        for label, settings in table:
            for k, v in (settings or {}).items():
                setattr(fg, k, v)
            jax.clear_caches()
            variant = "plain" if settings is None else "clean"
            ms = [spill.edge_metrics(spill.replace(shot, a, variant, new, 0.0), ideal, band, old, new)
                  for shot, ideal, band, a in prepared]
            m = {k: float(np.mean([r[k] for r in ms])) for k in ms[0]}
            room = np.mean([spill.edge_metrics(spill.replace(shot, a, variant, new, 0.0), ideal, band, old,
                                               new)["rgb_err"] for shot, ideal, band, a in in_rooms])
            lines.append(f"| {label} | {m['old_left']:.4f} | {m['green_left']:.2f} | {m['rgb_err']:.2f} | "
                         f"{room:.2f} |")
            print(lines[-1], flush=True)
    finally:
        for k, v in base.items():
            setattr(fg, k, v)
    lines += ["", f"Shipped (seg_jax.ops.foreground): LAM {fg.LAM}, POWER {fg.POWER}, WIDE_DIVISOR "
                  f"{fg.WIDE_DIVISOR}, LOCAL_B {fg.LOCAL_B}. On the flat colour a wider window and the wide B_s "
                  "win (and a smaller LAM, trusting the per-pixel solve, since B_s is then exact); in the rooms a "
                  "narrower window and a local B win. The shipped row keeps the green screen nearly clean and "
                  "still improves on the plain blend in the rooms.", ""]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
