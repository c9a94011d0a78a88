"""Orbax checkpoints of a training workdir: the latest and the best-by-validation-loss.

Layout: ``<workdir>/checkpoints/latest/<step>/`` and ``<workdir>/checkpoints/best/<step>/``, each step holding
``state`` (TrainState pytree), ``loop`` (host loop state as JSON: plateau/early-stopping counters, best loss,
metrics) and ``data`` (the data iterator state as JSON), so a run resumes on exactly the next batch.
Orbax writes each step to a temporary folder and renames it when complete, so a partially written checkpoint
is never listed or restored. A finalized step that was damaged later (truncated copy, disk error) fails to
restore: ``restore`` then warns, moves it to ``checkpoints/corrupt/`` and falls back to the next older step;
if no step restores it raises ``CheckpointError`` and moves nothing.
"""
from __future__ import annotations

import base64
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

from seg_jax.common.write_causes import cause_of
from seg_jax.training.writer_noise import drop_unread_task_errors, held_writer_noise

CHECKPOINT_DIR = "checkpoints"
CORRUPT_DIR = "corrupt"


class CheckpointError(ValueError):
    """No checkpoint of a workdir could be restored (the message names the folder and the cause)."""


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0][:300]


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (disk full, folder gone, I/O error); the older checkpoints are kept."""


def sync_processes(name: str, timeout_s: int = 1800) -> None:
    """Wait until every process of a multi-process run reaches ``name`` (no-op with one process).

    Uses the distributed runtime's barrier (long timeout), not a device collective: JAX's CPU (gloo)
    collectives give up when peers arrive more than ~30 s apart, e.g. while one host is still compiling.
    """
    if jax.process_count() == 1:
        return
    from jax._src import distributed  # the same client Orbax uses for its own barriers
    sync_processes.count = getattr(sync_processes, "count", 0) + 1
    distributed.global_state.client.wait_at_barrier(f"seg_jax_{name}_{sync_processes.count}", timeout_s * 1000)


def _manager(path: Path, max_to_keep: int, read_only: bool = False) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager(path, options=options, item_names=("state", "loop", "data"))


def encode_data_state(state: Any) -> Any:
    """Make a data-iterator state JSON-safe (Grain DataLoader states are bytes)."""
    if isinstance(state, bytes):
        return {"__bytes__": base64.b64encode(state).decode("ascii")}
    return state


def decode_data_state(state: Any) -> Any:
    if isinstance(state, dict) and set(state) == {"__bytes__"}:
        return base64.b64decode(state["__bytes__"])
    return state


def _remove_partial(directory: Path, step: int, tries: int = 20) -> None:
    """Remove ``step``'s half-written ``<step>.orbax-checkpoint-tmp*`` folders, retrying while a late writer
    thread still adds files to one (a single rmtree can race it and leave the folder behind)."""
    for _ in range(tries):
        partials = list(directory.glob(f"{step}.orbax-checkpoint-tmp*"))
        if not partials:
            return
        for partial in partials:
            shutil.rmtree(partial, ignore_errors=True)
        time.sleep(0.05)


class TrainingCheckpoints:
    """The two Orbax managers of a workdir (latest N and best 1)."""

    def __init__(self, workdir: str | Path, keep_latest: int = 1, read_only: bool = False):
        root = Path(workdir).absolute() / CHECKPOINT_DIR
        self.latest = _manager(root / "latest", max(1, keep_latest), read_only)
        self.best = _manager(root / "best", 1, read_only)

    def save(self, state, loop: dict, data_state: Any, *, best: bool) -> None:
        step = int(jax.device_get(state.step))
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), loop=ocp.args.JsonSave(loop),
                                  data=ocp.args.JsonSave({"state": encode_data_state(data_state)}))
        managers = [m for m, wanted in ((self.latest, True), (self.best, best)) if wanted and m.latest_step() != step]
        for manager in managers:
            self._save_or_raise(manager, step, args)

    @staticmethod
    def _save_or_raise(manager: ocp.CheckpointManager, step: int, args) -> None:
        """Save and wait; a failure in Orbax's background writer, or a step that did not land on disk, raises
        :class:`CheckpointSaveError` after removing the half-written folder (the previous steps stay)."""
        error = None
        directory = Path(manager.directory)
        with held_writer_noise():   # a full disk: one report per array from the writer threads; ours is the line
            try:
                manager.save(step, args=args)
                manager.wait_until_finished()
            except Exception as e:  # noqa: BLE001 - Orbax re-raises whatever the writer thread hit
                error = e
            if error is None:
                manager.reload()
                if step in manager.all_steps() and (directory / str(step)).is_dir():
                    return
            try:                    # let writer threads still running after the first failure end first
                manager.wait_until_finished()
            except Exception:       # noqa: BLE001 - the same failure again; the first one is reported
                pass
            drop_unread_task_errors()
            if jax.process_index() == 0:
                _remove_partial(directory, step)
            manager.reload()
        kept = sorted(manager.all_steps())
        found = cause_of(str(error)) if error else None
        reason = (found[0] if found else f"{type(error).__name__}: {_first_line(error)}") if error \
            else "nothing was written"
        free = shutil.disk_usage(directory if directory.exists() else directory.parent).free
        raise CheckpointSaveError(
            f"could not save the checkpoint of step {step} in {directory} ({reason}; {free / 2**20:.0f} MiB free); "
            f"kept steps {kept or 'none'}; free disk space (or fix the folder) and rerun the same command to "
            f"resume from step {kept[-1] if kept else 0}")

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state, *, which: str = "latest", step: int | None = None):
        """Returns (state, loop dict, data iterator state) of the newest checkpoint that restores.

        With ``step=None``, steps that fail to restore while an older one succeeds are moved to
        ``checkpoints/corrupt/`` with a warning (so later saves of those step numbers work); if none restores,
        raises ``CheckpointError`` and leaves every folder in place (e.g. a config that no longer matches).
        """
        manager = self.latest if which == "latest" else self.best
        if step is not None:
            return self._restore(manager, step, abstract_state)
        steps = sorted(manager.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"no {which} checkpoint in {manager.directory}")
        failed = []
        for candidate in steps:
            try:
                restored = self._restore(manager, candidate, abstract_state)
            except Exception as e:  # noqa: BLE001 - any damage (missing/truncated files, bad JSON) means unusable
                failed.append((candidate, e))
                continue
            if failed:
                self._quarantine(manager, which, failed, candidate)
            return restored
        first_step, first_error = failed[0]
        raise CheckpointError(
            f"no checkpoint in {manager.directory} can be restored (steps {steps}); step {first_step} failed with "
            f"{type(first_error).__name__}: {_first_line(first_error)}. If the model or config changed, use a new "
            f"--workdir; if the files are damaged, delete them to start over") from first_error

    @staticmethod
    def _restore(manager: ocp.CheckpointManager, step: int, abstract_state):
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), loop=ocp.args.JsonRestore(),
            data=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["loop"]), decode_data_state(restored["data"]["state"])

    @staticmethod
    def _quarantine(manager: ocp.CheckpointManager, which: str, failed: list, restored_step: int) -> None:
        corrupt = Path(manager.directory).parent / CORRUPT_DIR
        for step, error in failed:
            target = corrupt / f"{which}-{step}"
            if jax.process_index() == 0:
                print(f"seg_jax.training.checkpointing: WARNING: checkpoint step {step} in {manager.directory} "
                      "cannot be "
                      f"restored ({type(error).__name__}: {str(error)[:300]}); moved it to {target} and resumed "
                      f"from step {restored_step}", file=sys.stderr, flush=True)
                corrupt.mkdir(parents=True, exist_ok=True)
                if target.exists():
                    shutil.rmtree(target)
                shutil.move(str(Path(manager.directory) / str(step)), target)
        sync_processes(f"quarantined_{which}")
        manager.reload()

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def split_checkpoint_path(path: str | Path) -> tuple[Path, str | None]:
    """``<run>/checkpoints/latest`` or ``.../best`` -> (run folder, 'latest' | 'best'); any other path ->
    (the path, None), i.e. the run's default choice (best, else latest)."""
    path = Path(path)
    if path.name in ("latest", "best") and path.parent.name == CHECKPOINT_DIR:
        return path.parent.parent, path.name
    return path, None


def has_checkpoint(workdir: str | Path) -> bool:
    root = Path(workdir) / CHECKPOINT_DIR / "latest"
    return root.exists() and any(p.name.isdigit() for p in root.iterdir())


def restore_inference_state(workdir: str | Path, which: str | None = None,
                            average: bool = True) -> tuple[dict, dict, str]:
    """({"params", "batch_stats"} as numpy arrays, training config dict, checkpoint folder) of the best
    checkpoint (else the latest; ``which`` 'latest' or 'best' asks for one) of a training workdir: the
    parameters' moving average where the run kept one (``average=False``: the raw parameters). Checking the
    variables against a model is the caller's job (:func:`seg_jax.artifacts.model_io.load_weights`)."""
    workdir = Path(workdir)
    if not has_checkpoint(workdir):
        raise FileNotFoundError(f"{workdir} holds no training checkpoint (no {CHECKPOINT_DIR}/latest/<step>)")
    config_path = workdir / "config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    ckpts = TrainingCheckpoints(workdir, read_only=True)
    try:
        if which is None:
            which = "best" if ckpts.best.latest_step() is not None else "latest"
        manager = getattr(ckpts, which)
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"{workdir} has no {which} checkpoint; pass the workdir itself or "
                                    f"{workdir}/{CHECKPOINT_DIR}/latest")
        state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))["state"]
    finally:
        ckpts.close()
    # a run that keeps a moving average of its parameters scored (and chose its best checkpoint by) the average
    params = state["ema_params"] if average and state.get("ema_params") is not None else state["params"]
    return ({"params": params, "batch_stats": state["batch_stats"]}, config,
            f"{workdir}/{CHECKPOINT_DIR}/{which}/{step}")
