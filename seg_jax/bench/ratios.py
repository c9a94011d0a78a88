"""seg_jax / peer time ratios from a benchmark result (< 1 means seg_jax is faster)."""
from __future__ import annotations

from typing import Any, Optional

from seg_jax.bench.peer_api import MEDIAPIPE


def _best(rows, **match) -> Optional[dict]:
    cands = [r for r in rows if isinstance(r, dict) and "median_ms" in r
             and all(r.get(k) == v for k, v in match.items())]
    return min(cands, key=lambda r: r["median_ms"]) if cands else None


def ratios(res: dict[str, Any]) -> list[dict[str, Any]]:
    """seg_jax / peer latency ratios (< 1 means seg_jax is faster): the paired rounds first (the robust
    figure), then the separate sections' best seg_jax variant per row."""
    out = [dict(r, kind=f"{r['kind']}, paired rounds") for r in (res.get("paired") or [])
           if isinstance(r, dict) and "ratio" in r]
    mp = (res.get("peers") or {}).get("mediapipe") or {}
    mp_rows = mp.get("results", []) if mp.get("status") == "ok" else []
    lat = res.get("latency") if isinstance(res.get("latency"), list) else []
    e2e = res.get("e2e") if isinstance(res.get("e2e"), list) else []
    pairs = [(p.ours, p.peer_model, p.peer_frame) for p in MEDIAPIPE.pairs]
    for model in ("mobilenet", "convlstm"):
        for ours_size, peer_model, peer_frame in pairs:
            ours = _best(lat, model=model, input=list(ours_size))
            peer = next((r for r in mp_rows if r["model"] == peer_model and r["frame"] == peer_frame), None)
            if ours and peer:
                out.append({"kind": "latency", "model": model, "variant": ours["variant"], "input": list(ours_size),
                            "peer": f"mediapipe {peer_model}", "peer_frame": peer_frame,
                            "ours_ms": ours["median_ms"], "peer_ms": peer["median_ms"],
                            "ratio": ours["median_ms"] / peer["median_ms"]})
        for row in e2e:
            if row.get("model") != model or "median_ms" not in row or not row.get("variant", "").endswith("alpha"):
                continue
            frame = f"{row['frame'][0]}x{row['frame'][1]}"
            for peer in (r for r in mp_rows if r["frame"] == frame):
                out.append({"kind": "end-to-end (alpha at frame size)", "model": model, "variant": row["variant"],
                            "frame": row["frame"], "peer": f"mediapipe {peer['model']}",
                            "ours_ms": row["median_ms"], "peer_ms": peer["median_ms"],
                            "ratio": row["median_ms"] / peer["median_ms"]})
    tv = (res.get("peers") or {}).get("torchvision") or {}
    for r in tv.get("results", []) if tv.get("status") == "ok" else []:
        ours = _best(lat if r["batch"] == 1 else (res.get("throughput") or []), model="mobilenet",
                     input=list(r["size"]), **({} if r["batch"] == 1 else {"batch": r["batch"]}))
        if ours:
            out.append({"kind": f"batch {r['batch']}", "model": "mobilenet", "variant": ours["variant"],
                        "peer": f"torchvision lraspp {r['mode']} {r['dtype']}", "ours_ms": ours["median_ms"],
                        "peer_ms": r["median_ms"], "ratio": ours["median_ms"] / r["median_ms"]})
    return out
