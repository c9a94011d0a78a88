"""Exact resume after SIGKILL, preemption (SIGTERM), and the guards of ``seg_jax.training.loop``.

Every run trains the tiny variant with a narrow U-Net (a test config written to a temp file) so that the
train/eval steps compile in seconds and are shared, through the persistent compilation cache of
``tests/conftest.py``, by the subprocesses and the in-process runs below.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from seg_jax.training import checkpointing
from seg_jax.training import checks as train_checks
from seg_jax.training import loop as train

NUM_STEPS = 16

TEST_CONFIG = '''"""Test config: the tiny variant (synthetic 64x64 data) with a narrow U-Net; schedule pinned here."""
from seg_jax.configs import apply_variant, get_default_config


def get_config(arg=None):
    config = apply_variant(get_default_config(), "tiny")
    config.model.name = "unet"
    config.model.widths = (4, 8, 8, 16)
    config.batch_size = 2
    config.learning_rate = 2e-3
    config.lr_boundaries = (1000,)
    config.lr_scales = (0.1,)
    config.eval_every = 2
    config.checkpoint_every = 2
    config.log_every = 1
    config.keep_checkpoints = 2
    config.num_steps = %d
    return config
''' % NUM_STEPS


def write_test_config(directory: Path) -> Path:
    path = directory / "tiny_unet_config.py"
    path.write_text(TEST_CONFIG)
    return path


def load_test_config(path: Path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("tiny_unet_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def train_command(config_path: Path, workdir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "seg_jax.train", "--config", str(config_path), "--workdir", str(workdir),
            "--noprogress", *extra]


def start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=dict(os.environ),
                            cwd=Path(__file__).resolve().parents[1])


def finish(proc: subprocess.Popen, log: Path, timeout: float = 240, code: int = 0) -> str:
    proc.wait(timeout=timeout)
    out = log.read_text()
    assert proc.returncode == code, f"exit code {proc.returncode}:\n{out[-3000:]}"
    return out


def checkpoint_steps(workdir: Path) -> list[int]:
    root = workdir / "checkpoints" / "latest"
    return sorted(int(p.name) for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


def wait_for_checkpoint(proc: subprocess.Popen, workdir: Path, log: Path, timeout: float = 240) -> int:
    """Poll until a finalized checkpoint exists while ``proc`` is still running; returns its step."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        steps = checkpoint_steps(workdir)
        if steps:
            assert proc.poll() is None, f"the run ended before it could be interrupted:\n{log.read_text()[-2000:]}"
            return steps[-1]
        assert proc.poll() is None, f"the run ended without a checkpoint:\n{log.read_text()[-3000:]}"
        time.sleep(0.02)
    raise TimeoutError(f"no checkpoint in {workdir} after {timeout} s")


def read_checkpoint(workdir: Path, step: int | None = None) -> dict:
    """The state (as numpy, whatever topology saved it), loop and data items of a step (newest by default)."""
    step = checkpoint_steps(workdir)[-1] if step is None else step
    step_dir = workdir / "checkpoints" / "latest" / str(step)
    checkpointer = ocp.StandardCheckpointer()
    metadata = checkpointer.metadata(step_dir / "state")
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
                                    getattr(metadata, "item_metadata", metadata))
    state = jax.device_get(checkpointer.restore(step_dir / "state", target))
    checkpointer.close()
    items = ocp.Checkpointer(ocp.JsonCheckpointHandler())
    loop, data = (items.restore(step_dir / name) for name in ("loop", "data"))
    return {"step": step, "state": state, "loop": dict(loop), "data": dict(data)}


def assert_bit_identical(a: dict, b: dict) -> str:
    leaves_a, tree_a = jax.tree_util.tree_flatten_with_path(a["state"])
    leaves_b, tree_b = jax.tree_util.tree_flatten_with_path(b["state"])
    assert [p for p, _ in leaves_a] == [p for p, _ in leaves_b]
    differing = [jax.tree_util.keystr(p) for (p, x), (_, y) in zip(leaves_a, leaves_b)
                 if np.asarray(x).dtype != np.asarray(y).dtype or not np.array_equal(np.asarray(x), np.asarray(y))]
    assert not differing, f"{len(differing)} of {len(leaves_a)} state leaves differ, e.g. {differing[:5]}"
    assert a["data"] == b["data"], (a["data"], b["data"])
    n = sum(np.asarray(x).size for _, x in leaves_a)
    return f"{len(leaves_a)} state leaves ({n:,} values: params, batch_stats, Adam state, step, rng) bit-identical"


@pytest.fixture(scope="module")
def config_path(tmp_path_factory) -> Path:
    return write_test_config(tmp_path_factory.mktemp("config"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_path):
    """An uninterrupted run of NUM_STEPS steps, started in the background; call it to wait for its workdir."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    log = workdir.parent / "log.txt"
    proc = start(train_command(config_path, workdir), log)

    def wait() -> Path:
        if proc.returncode is None:
            out = finish(proc, log)
            assert f"completed at step {NUM_STEPS}" in out, out[-2000:]
        return workdir

    yield wait
    if proc.poll() is None:
        proc.kill()


def wait_for_output(proc: subprocess.Popen, log: Path, text: str, timeout: float = 240) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        out = log.read_text()
        if text in out:
            return out
        assert proc.poll() is None, f"the run ended before printing {text!r}:\n{out[-3000:]}"
        time.sleep(0.05)
    raise TimeoutError(f"{text!r} not printed after {timeout} s")


def test_sigkill_and_sigterm_then_rerun_equal_uninterrupted_run_bit_for_bit(tmp_path, config_path, reference):
    """Run 1 is SIGKILLed after its first checkpoint, run 2 (same command) resumes and is preempted with SIGTERM
    after its next checkpoint, run 3 finishes: the final state equals an uninterrupted run's, bit for bit."""
    workdir = tmp_path / "run"
    cmd = train_command(config_path, workdir)

    log1 = tmp_path / "log1.txt"
    proc = start(cmd, log1)
    killed_after = wait_for_checkpoint(proc, workdir, log1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint_steps(workdir)[-1] < NUM_STEPS, "killed too late: the run had already finished"

    log2 = tmp_path / "log2.txt"
    proc = start(cmd, log2)
    out = wait_for_output(proc, log2, "resumed from step ")
    resumed = int(out.split("resumed from step ")[1].split()[0])
    assert killed_after <= resumed < NUM_STEPS, out[-2000:]
    deadline = time.time() + 120
    while checkpoint_steps(workdir)[-1] <= resumed and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    out = finish(proc, log2, timeout=120, code=128 + signal.SIGTERM)  # a clean exit, the signal's status (143)
    assert "preempted (SIGTERM): checkpoint saved at step" in out, out[-2000:]
    preempted = int(out.split("checkpoint saved at step ")[1].split(";")[0])
    assert resumed < preempted < NUM_STEPS and checkpoint_steps(workdir)[-1] == preempted

    log3 = tmp_path / "log3.txt"
    out = finish(start(cmd, log3), log3)
    assert f"resumed from step {preempted}" in out and f"completed at step {NUM_STEPS}" in out, out[-2000:]

    ref = read_checkpoint(reference())
    got = read_checkpoint(workdir)
    assert ref["step"] == got["step"] == NUM_STEPS
    summary = assert_bit_identical(got, ref)
    assert got["loop"] == ref["loop"]
    print(f"\nSIGKILL after checkpoint {killed_after}; rerun resumed from step {resumed}; SIGTERM -> checkpoint at "
          f"step {preempted}, exit 143; rerun resumed from {preempted} to {NUM_STEPS}. Against an uninterrupted "
          f"{NUM_STEPS}-step run: {summary}; loop state and Grain iterator state equal")


def _corrupt_step(step_dir: Path) -> None:
    """Truncate every array data file of a finalized step (as a broken copy or a failing disk would)."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, f"no array data files under {step_dir}"
    for p in files:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])


def test_damaged_newest_checkpoint_is_never_restored(tmp_path, reference):
    workdir = tmp_path / "run"
    shutil.copytree(reference(), workdir)
    newest, previous = checkpoint_steps(workdir)[-1], checkpoint_steps(workdir)[-2]
    # An unfinished save (Orbax temporary folder) with a higher step is ignored.
    shutil.copytree(workdir / "checkpoints/latest" / str(newest),
                    workdir / "checkpoints/latest" / f"{newest + 2}.orbax-checkpoint-tmp-1234")
    ckpts = checkpointing.TrainingCheckpoints(workdir)
    assert ckpts.latest_step() == newest
    expected_previous = read_checkpoint(workdir, previous)

    _corrupt_step(workdir / "checkpoints/latest" / str(newest))
    ckpts.latest.reload()
    state, loop, data_state = ckpts.restore(None)  # None: restore the arrays as saved
    ckpts.close()
    assert int(state["step"]) == previous
    for x, y in zip(jax.tree_util.tree_leaves(state), jax.tree_util.tree_leaves(expected_previous["state"])):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert checkpoint_steps(workdir)[-1] == previous  # the damaged step was moved aside, so it can be re-saved
    assert (workdir / "checkpoints/corrupt" / f"latest-{newest}").is_dir()

    # If no step restores, fail with a clear error and move nothing.
    _corrupt_step(workdir / "checkpoints/latest" / str(previous))
    ckpts = checkpointing.TrainingCheckpoints(workdir)
    with pytest.raises(checkpointing.CheckpointError, match="can be restored"):
        ckpts.restore(None)
    ckpts.close()
    assert checkpoint_steps(workdir)[-1] == previous


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, config_path):
    config = load_test_config(config_path)
    config.num_steps = 6
    config.lr_boundaries = (2,)
    config.lr_scales = (1e33,)  # learning rate 2e30 from step 3 on: the loss diverges
    with pytest.raises(train.TrainingDiverged, match=r"at step (3|4)\b") as err:
        train.train_and_evaluate(config, tmp_path, progress=False)
    assert "last good checkpoint" in str(err.value)
    assert checkpoint_steps(tmp_path) == [2]
    good = read_checkpoint(tmp_path)
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(good["state"]["params"]))


def test_unwritable_or_full_workdir_fails_before_training(tmp_path, config_path, monkeypatch):
    config = load_test_config(config_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    t0 = time.time()
    with pytest.raises(OSError, match="not writable"):
        train.train_and_evaluate(config, blocker / "run", progress=False)
    monkeypatch.setattr(train_checks, "MIN_FREE_DISK_BYTES", 1 << 62)
    with pytest.raises(OSError, match="MiB free"):
        train.train_and_evaluate(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert time.time() - t0 < 10, "the workdir checks must run before the model is built"


@pytest.mark.parametrize("failure", ["raises", "silent"])
def test_a_failed_checkpoint_save_stops_the_run_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    """Disk full in Orbax's writer (raised, or a step that never lands): the run stops with the step and the
    fix named, no half-written folder is left, and the previous checkpoint restores."""
    from seg_jax.training.checkpointing import CheckpointSaveError, TrainingCheckpoints
    from seg_jax.training.loop import train_and_evaluate
    config = load_test_config(write_test_config(tmp_path))
    config.num_steps = 4
    workdir = tmp_path / "run"
    real_save = ocp.CheckpointManager.save

    def flaky_save(self, step, *args, **kwargs):
        if step < 4:
            return real_save(self, step, *args, **kwargs)
        if failure == "raises":
            raise OSError(28, "RESOURCE_EXHAUSTED: No space left on device")
        return True

    monkeypatch.setattr(ocp.CheckpointManager, "save", flaky_save)
    with pytest.raises(CheckpointSaveError, match="step 4.*kept steps \\[2\\].*free disk space"):
        train_and_evaluate(config, workdir, progress=False)
    assert not list((workdir / "checkpoints").glob("*/*tmp*"))
    monkeypatch.setattr(ocp.CheckpointManager, "save", real_save)
    assert TrainingCheckpoints(workdir).latest_step() == 2
    summary = train_and_evaluate(config, workdir, progress=False)       # the same command resumes
    assert summary["step"] == 4


def test_ctrl_c_checkpoints_like_sigterm_in_one_line(tmp_path, config_path):
    """SIGINT mid-run: a checkpoint at the next step, one status line, exit 130, no traceback; a rerun resumes."""
    workdir = tmp_path / "run"
    cmd = train_command(config_path, workdir)
    log = tmp_path / "log.txt"
    proc = start(cmd, log)
    wait_for_checkpoint(proc, workdir, log)
    proc.send_signal(signal.SIGINT)
    out = finish(proc, log, timeout=120, code=128 + signal.SIGINT)    # the exit-code rule: 128 + N
    assert "stopped (SIGINT): checkpoint saved at step" in out and "Traceback" not in out, out[-2000:]
    stopped = int(out.split("checkpoint saved at step ")[1].split(";")[0])
    assert checkpoint_steps(workdir)[-1] == stopped
    if stopped < NUM_STEPS:
        out = finish(start(cmd, tmp_path / "log2.txt"), tmp_path / "log2.txt")
        assert f"resumed from step {stopped}" in out
