"""CPU load of the whole background-blur job: what a call app running beside us feels.

  python -m seg_jax.bench.cpu_load --out results/bench/cpu-load.json      # and results/bench/cpu-load.md beside it

``load``: each job (decode an H.264 clip, segment, blur the background, blend, encode H.264) runs as its own
process on the sample clip scaled to 640x480 and 1280x720; its CPU time (user + sys of the process and of the
children it waited for: the ffmpeg encoder) is read with ``os.wait4``. A long run minus a short run, divided by
the frames between them, is the CPU per frame in the steady state (start-up, imports and compilation cancel
out). seg_jax's jobs and MediaPipe's (``mediapipe_job.py`` in its own virtualenv, written as a careful user
would) alternate round by round, idle and with a busy process pinned to one core (``loaded``).
``profile``: where one 640x480 frame's CPU goes, stage by stage, in this process.
``profile`` also times the network alone in JAX and in onnxruntime (the ONNX export), CPU per call.
``every``: Dice and flicker of ``--every N`` on the DAVIS test clips (``seg_jax.evaluation.evaluate``'s protocol).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from seg_jax.bench.cpu_load_report import write
from seg_jax.bench.timing import hardware, load_average
from seg_jax.data.real import heldout_files
from seg_jax.evaluation.evaluate import evaluate_full_resolution
from seg_jax.live.app import LiveOptions, load_segmenter
from seg_jax.live.audio import ffmpeg_exe
from seg_jax.live.presets import apply_preset
from seg_jax.live.sinks import VideoFileSink
from seg_jax.live.sources import SAMPLE_VIDEO, resize_cover
from seg_jax.onnx.export import export_onnx
from seg_jax.onnx.runtime import load_session
from seg_jax.ops.composite import AlphaOptions, CompositeOptions, render
from seg_jax.peers.mediapipe import ensure_mediapipe_venv

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280)}
ONE_XLA_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
# job name -> (kind, extra arguments, extra environment)
JOBS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "seg_jax balanced": ("seg_jax", [], {}),
    "seg_jax fast": ("seg_jax", ["--preset", "fast"], {}),
    "seg_jax balanced --every 2": ("seg_jax", ["--every", "2"], {}),
    "seg_jax balanced --every 3": ("seg_jax", ["--every", "3"], {}),
    "seg_jax fast --every 2": ("seg_jax", ["--preset", "fast", "--every", "2"], {}),
    "seg_jax balanced 1-thread XLA": ("seg_jax", [], {"XLA_FLAGS": ONE_XLA_THREAD}),
    "seg_jax convlstm": ("seg_jax", ["--model", "convlstm"], {}),
    "mediapipe general": ("mediapipe", ["--model", "0"], {}),
    "mediapipe naive": ("mediapipe", ["--model", "0", "--naive"], {}),
}


def make_clip(size: str, folder: Path) -> Path:
    """The sample clip scaled to cover ``size`` ('WxH') and centre-cropped, as H.264 (cached in ``folder``)."""
    import cv2

    path = folder / f"sample_{size}.mp4"
    if path.exists():
        return path
    cap = cv2.VideoCapture(str(SAMPLE_VIDEO))
    with VideoFileSink(str(path), cap.get(cv2.CAP_PROP_FPS)) as sink:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            sink.write(resize_cover(bgr[..., ::-1], SIZES[size]))
    cap.release()
    return path


def job_argv(job: str, clip: Path, out: Path, frames: int, peer_python: Optional[Path]) -> list[str]:
    kind, extra, _ = JOBS[job]
    if kind == "seg_jax":
        return [sys.executable, "-m", "seg_jax.live", "--source", str(clip), "--output", str(out), "--mode", "blur",
                "-q", "--max-frames", str(frames), *extra]
    script = Path(__file__).with_name("mediapipe_job.py")
    return [str(peer_python), str(script), str(clip), str(out), "--ffmpeg", str(ffmpeg_exe()), "--frames",
            str(frames), *extra]


def cpu_seconds(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float]:
    """Run ``argv`` -> (CPU seconds of it and its waited-for children, wall seconds); raises on failure."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exit {proc.returncode}: {err.strip()[-300:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - t0


@contextlib.contextmanager
def busy_core(on: bool):
    """A process spinning on one core (pinned to CPU 0 where affinity can be set) while the block runs."""
    if not on:
        yield
        return
    code = "import os\ntry: os.sched_setaffinity(0, {0})\nexcept Exception: pass\nwhile True: pass"
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def measure_load(jobs: Sequence[str], size: str, *, loaded: bool, rounds: int, long: int, short: int,
                 folder: Path, peer_python: Optional[Path], log=print) -> list[dict]:
    """CPU ms per frame of each job at ``size``, jobs alternating within each round (paired)."""
    clip = make_clip(size, folder)
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS",)}
    per_job: dict[str, list[float]] = {j: [] for j in jobs}
    walls: dict[str, list[float]] = {j: [] for j in jobs}
    errors: dict[str, str] = {}
    load_before = load_average()
    with busy_core(loaded):
        for job in jobs:    # fill the compilation cache, so neither measured run compiles
            try:
                cpu_seconds(job_argv(job, clip, folder / "warmup.mp4", 2, peer_python), {**env, **JOBS[job][2]})
            except RuntimeError as e:
                errors[job] = str(e)
        for r in range(rounds):
            for job in (jobs if r % 2 == 0 else list(reversed(jobs))):
                if job in errors:
                    continue
                out = folder / f"out_{job.replace(' ', '_')}.mp4"
                job_env = {**env, **JOBS[job][2]}
                try:
                    runs = {n: cpu_seconds(job_argv(job, clip, out, n, peer_python), job_env)
                            for n in ((long, short) if r % 2 == 0 else (short, long))}
                    (cpu_long, wall), (cpu_short, _) = runs[long], runs[short]
                except RuntimeError as e:
                    errors[job] = str(e)
                    log(f"cpu_load: {job}: {e}")
                    continue
                per_job[job].append(1000.0 * (cpu_long - cpu_short) / (long - short))
                walls[job].append(wall)
                log(f"cpu_load {size} {'loaded' if loaded else 'idle'} round {r}: {job}: "
                    f"{per_job[job][-1]:.1f} ms CPU/frame")
    rows = []
    for job in jobs:
        row = {"job": job, "size": size, "condition": "loaded (1 busy core)" if loaded else "idle",
               "load_avg_before": load_before, "load_avg_after": load_average(), "frames": [long, short]}
        if job in errors:
            row["error"] = errors[job]
        else:
            row.update(cpu_ms_per_frame=statistics.median(per_job[job]), rounds_ms=per_job[job],
                       wall_s_long_run=statistics.median(walls[job]))
        rows.append(row)
    return rows


def profile_stages(size: str, folder: Path, frames: int = 60) -> dict:
    """CPU ms per 640x480 frame of each stage of seg_jax's default blur job, each stage run alone over the same
    frames (process CPU time: every XLA thread counted; the encoder: its ffmpeg process)."""
    import resource

    import cv2
    import jax.numpy as jnp

    clip = make_clip(size, folder)
    cap, decoded = cv2.VideoCapture(str(clip)), []
    t = time.process_time()
    for _ in range(frames):
        ok, bgr = cap.read()
        decoded.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    stages = {"decode (OpenCV, H.264)": time.process_time() - t}
    seg = load_segmenter(apply_preset(LiveOptions()))
    hw = decoded[0].shape[:2]
    step = seg.streaming_step(seg.input_size_for(hw))
    state = step.init_state()
    alpha_opts, comp = AlphaOptions(None, 0, 0.0), CompositeOptions("blur", 12.0, (0, 0, 0))
    zero = jnp.zeros(hw, jnp.float32)
    for f in decoded[:2]:   # compile every piece
        small = step._pre(jnp.asarray(f))
        state, prob = step._net(step.params, state, small)
        alpha = step._post(prob, small, jnp.asarray(f))
        render(jnp.asarray(f), alpha, zero, None, jnp.float32(0), alpha_opts, comp)[0].block_until_ready()
    times = {"to device + resize to the network's size": [], "network (+ stabiliser)": [], "guided filter": [],
             "blur + blend, to host": []}
    previous = zero
    for f in decoded:
        t0 = time.process_time()
        frame = jnp.asarray(f)
        small = step._pre(frame).block_until_ready()
        t1 = time.process_time()
        state, prob = step._net(step.params, state, small)
        prob.block_until_ready()
        t2 = time.process_time()
        alpha = step._post(prob, small, frame).block_until_ready()
        t3 = time.process_time()
        out, previous = render(frame, alpha, previous, None, jnp.float32(0), alpha_opts, comp)
        np.asarray(out)
        t4 = time.process_time()
        for k, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            times[k].append(dt)
    stages.update({k: sum(v) for k, v in times.items()})
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.process_time()
    with VideoFileSink(str(folder / "profile.mp4"), 30.0) as sink:
        for f in decoded:
            sink.write(f)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stages["encode H.264 (ffmpeg, libx264 veryfast)"] = (after.ru_utime + after.ru_stime - before.ru_utime
                                                         - before.ru_stime) + (time.process_time() - t)
    return {"size": size, "frames": frames, "model_input": list(step.input_size),
            "cpu_ms_per_frame": {k: round(1000.0 * v / frames, 2) for k, v in stages.items()}}


def network_backends(size: str, folder: Path, calls: int = 60, rounds: int = 3) -> dict:
    """CPU ms per call of the network alone at the default preset's inference size for a ``size`` frame: JAX
    (BatchNorm-folded, as the live tool runs it) and onnxruntime (the ONNX export) with 1 and 2 threads, in
    alternating blocks of ``calls`` calls."""
    import jax.numpy as jnp

    seg = load_segmenter(apply_preset(LiveOptions(stabilise=0.0)))
    hw = SIZES[size]
    step = seg.streaming_step(seg.input_size_for(hw))
    path = export_onnx(seg.model_name, folder / f"{seg.model_name}.onnx")
    x = np.random.default_rng(0).random((1, *step.input_size, 3), np.float32)
    state = step.init_state()
    small = jnp.asarray(x)

    def jax_call():
        nonlocal state
        state, prob = step._net(step.params, state, small)
        prob.block_until_ready()
    calls_by_name = {"jax (folded)": jax_call}
    for threads in (1, 2):
        session = load_session(path, threads)
        calls_by_name[f"onnxruntime {threads} thread{'s' if threads > 1 else ''}"] = \
            (lambda sess: lambda: sess.run(["mask"], {"image": x}))(session)
    for call in calls_by_name.values():
        for _ in range(5):
            call()
    cpu: dict[str, list[float]] = {k: [] for k in calls_by_name}
    for _ in range(rounds):
        for name, call in calls_by_name.items():
            t = time.process_time()
            for _ in range(calls):
                call()
            cpu[name].append(1000.0 * (time.process_time() - t) / calls)
    return {"frame": size, "model_input": list(step.input_size), "calls": [rounds, calls],
            "cpu_ms_per_call": {k: round(statistics.median(v), 2) for k, v in cpu.items()}}


def every_quality(data_root: str, everys: Sequence[int]) -> list[dict]:
    """Dice and flicker on the DAVIS test clips of the default preset with the network on every N-th frame."""
    files = heldout_files(data_root, split="test", subset="davis")
    rows = []
    for n in everys:
        seg = load_segmenter(apply_preset(LiveOptions(every=n)))
        r = evaluate_full_resolution(seg, files)
        rows.append({"every": n, "frames": len(files), "dice": r["dice"], "iou": r.get("iou"),
                     "flicker": r["flicker"], "dtssd": r.get("dtssd"), "boundary_f": r.get("boundary_f")})
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m seg_jax.bench.cpu_load", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="results/bench/cpu-load.json")
    p.add_argument("--sections", default="load,profile,every")
    p.add_argument("--jobs", default=",".join(JOBS), help="comma-separated job names (default: all)")
    p.add_argument("--sizes", default=",".join(SIZES))
    p.add_argument("--conditions", default="idle,loaded")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--frames", default="180,30", help="LONG,SHORT frames of the two runs")
    p.add_argument("--everys", default="1,2,3")
    p.add_argument("--data", default=None, help="real data root (default: seg_jax.evaluation.evaluate's)")
    a = p.parse_args(argv)
    long, short = (int(v) for v in a.frames.split(","))
    sections, jobs = a.sections.split(","), a.jobs.split(",")
    unknown = [j for j in jobs if j not in JOBS]
    if unknown:
        p.error(f"unknown job(s) {unknown}; known: {list(JOBS)}")
    out = Path(a.out)
    doc = json.loads(out.read_text()) if out.exists() else {}
    command = "python -m seg_jax.bench.cpu_load " + " ".join(shlex.quote(v) for v in (argv or sys.argv[1:]))
    doc.update({"schema": "seg_jax.bench.cpu_load/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "hardware": hardware(),
                "commands": doc.get("commands", []) + ([doc.pop("command")] if "command" in doc else []) + [command]})
    folder = Path(tempfile.gettempdir()) / "seg_jax_cpu_load"
    folder.mkdir(exist_ok=True)

    def save():
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        write(doc, out)

    if "load" in sections:
        peer, why = ensure_mediapipe_venv(install=False)
        doc["mediapipe"] = why
        runnable = [j for j in jobs if JOBS[j][0] == "seg_jax" or peer is not None]
        redo = {(j, s, c) for j in runnable for s in a.sizes.split(",") for c in a.conditions.split(",")}
        doc["load"] = [r for r in doc.get("load", []) if (r["job"], r["size"], r["condition"].split()[0]) not in redo]
        for size in a.sizes.split(","):
            for condition in a.conditions.split(","):
                doc["load"] += measure_load(runnable, size, loaded=condition == "loaded", rounds=a.rounds,
                                            long=long, short=short, folder=folder, peer_python=peer,
                                            log=lambda s: print(s, file=sys.stderr, flush=True))
                save()
    if "profile" in sections:
        doc["profile"] = profile_stages("640x480", folder)
        save()
        doc["network_backends"] = network_backends("640x480", folder)
        save()
    if "every" in sections:
        from seg_jax.evaluation.evaluate import DEFAULT_DATA_ROOT
        doc["every"] = every_quality(a.data or DEFAULT_DATA_ROOT, [int(v) for v in a.everys.split(",")])
        save()
    save()
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
