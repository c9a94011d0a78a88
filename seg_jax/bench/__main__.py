"""``python -m seg_jax.bench --suite {cpu,gpu} --out results/bench/bench-<host>.json [--quick]``.

Flags -> :class:`seg_jax.bench.run.Options` -> :class:`seg_jax.bench.run.Runner`; see ``run.py``.
Render the JSON as markdown with ``python -m seg_jax.bench.report results/bench/bench-*.json``.
"""
from __future__ import annotations

import argparse
import platform
import sys

from seg_jax.inference.sizes import parse_sizes


def _sizes(text: str) -> tuple[tuple[int, int], ...]:
    try:
        return parse_sizes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.split(",") if t)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m seg_jax.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--out", default=None, help="JSON path (default results/bench/bench-<host>-<suite>.json)")
    p.add_argument("--quick", action="store_true", help="mobilenet only, fewer iterations (< 2 min on CPU)")
    p.add_argument("--models", type=_names, help="comma list of mobilenet,convlstm,unet")
    p.add_argument("--sizes", type=_sizes, help="model inputs HxW, e.g. 256x256,160x256 (multiples of 32)")
    p.add_argument("--frames", type=_sizes, help="end-to-end frame sizes HxW, e.g. 480x640,720x1280")
    p.add_argument("--sections", type=_names,
                   help="comma list of latency,ablation,e2e,throughput,train,datapath,peers,paired")
    p.add_argument("--warmup", type=int)
    p.add_argument("--iters", type=int, help="batch-1 latency iterations")
    p.add_argument("--e2e-iters", type=int)
    p.add_argument("--throughput-batch", type=int)
    p.add_argument("--throughput-iters", type=int)
    p.add_argument("--train-batch", type=int)
    p.add_argument("--train-size", type=lambda s: _sizes(s)[0])
    p.add_argument("--train-iters", type=int)
    p.add_argument("--train-models", type=_names, help="default: --models minus unet on CPU")
    p.add_argument("--peer-iters", type=int)
    p.add_argument("--no-peer-install", action="store_true", help="use an existing peer venv only")
    p.add_argument("--paired-rounds", type=int, help="paired section: rounds of alternating seg_jax/peer blocks")
    p.add_argument("--paired-block", type=int, help="paired section: calls per block")
    p.add_argument("--no-bf16-latency", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    from seg_jax.bench.run import Options, Runner, write_json
    o = Options.for_suite(
        a.suite, a.quick, models=a.models, sizes=a.sizes, frames=a.frames, sections=a.sections, warmup=a.warmup,
        iters=a.iters, e2e_iters=a.e2e_iters, throughput_batch=a.throughput_batch,
        throughput_iters=a.throughput_iters, train_batch=a.train_batch, train_size=a.train_size,
        train_iters=a.train_iters, train_models=a.train_models, peer_iters=a.peer_iters,
        paired_rounds=a.paired_rounds, paired_block=a.paired_block,
        peer_install=False if a.no_peer_install else None, bf16_latency=False if a.no_bf16_latency else None)
    out = a.out or f"results/bench/bench-{platform.node()}-{a.suite}.json"
    res = Runner(o).run(partial_out=out)
    res["options"]["quick"] = a.quick
    path = write_json(res, out)
    print(f"wrote {path}", file=sys.stderr)
    for r in res.get("ratios", []):
        print(f"  {r['kind']:48s} {r['model']:9s} {r['variant']:18s} vs {r['peer']:28s} "
              f"{r['ours_ms']:7.2f} / {r['peer_ms']:6.2f} ms = {r['ratio']:.2f}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
