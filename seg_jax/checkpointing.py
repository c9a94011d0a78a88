"""Orbax checkpoints of a training workdir: the latest and the best-by-validation-loss.

Layout: ``<workdir>/checkpoints/latest/<step>/`` and ``<workdir>/checkpoints/best/<step>/``, each step holding
``state`` (TrainState pytree), ``loop`` (host loop state as JSON: plateau/early-stopping counters, best loss,
metrics) and ``data`` (the data iterator state as JSON), so a run resumes on exactly the next batch.
Orbax writes each step to a temporary folder and renames it when complete, so a partially written checkpoint
is never listed or restored.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp

CHECKPOINT_DIR = "checkpoints"


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
        if self.latest.latest_step() != step:
            self.latest.save(step, args=args)
        if best and self.best.latest_step() != step:
            self.best.save(step, args=args)
        self.latest.wait_until_finished()
        self.best.wait_until_finished()

    def latest_step(self) -> int | None:
        return self.latest.latest_step()

    def restore(self, abstract_state, *, which: str = "latest", step: int | None = None):
        """Returns (state, loop dict, data iterator state) of the newest complete checkpoint."""
        manager = self.latest if which == "latest" else self.best
        step = manager.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no {which} checkpoint in {manager.directory}")
        restored = manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract_state), loop=ocp.args.JsonRestore(),
            data=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["loop"]), decode_data_state(restored["data"]["state"])

    def close(self) -> None:
        self.latest.close()
        self.best.close()


def has_checkpoint(workdir: str | Path) -> bool:
    root = Path(workdir) / CHECKPOINT_DIR / "latest"
    return root.exists() and any(p.name.isdigit() for p in root.iterdir())


def load_inference_variables(workdir: str | Path, model_name: str) -> tuple[dict, dict]:
    """{"params", "batch_stats"} of the best checkpoint (else the latest) of a training workdir.

    Returns (variables, manifest-like dict with the training config). Raises a one-line error when the
    folder holds no checkpoint or the checkpoint was trained as another model.
    """
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not has_checkpoint(workdir):
        raise FileNotFoundError(f"{workdir} holds no seg_jax weights (no manifest.json) and no training "
                                f"checkpoint (no {CHECKPOINT_DIR}/latest/<step>); pass a weights folder or a workdir")
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    trained_as = config.get("model", {}).get("name")
    if trained_as and trained_as != model_name:
        raise ValueError(f"checkpoint {workdir} holds a {trained_as!r} model, not {model_name!r}; "
                         f"use --model {trained_as} or another checkpoint")
    ckpts = TrainingCheckpoints(workdir, read_only=True)
    which = "best" if ckpts.best.latest_step() is not None else "latest"
    manager = getattr(ckpts, which)
    step = manager.latest_step()
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    state = restored["state"]
    ckpts.close()
    variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
    from seg_jax import model_io
    model = model_io.build_model(config.get("model") or {"name": model_name})
    expected = jax.eval_shape(lambda: model.init(jax.random.key(0), model_io.dummy_input(model_name, 1, 64, 64),
                                                 train=False))
    model_io.check_variables_match(variables, dict(expected), str(workdir), model_name)
    return variables, {"model": config.get("model", {"name": model_name}), "config": config,
                       "checkpoint": f"{workdir}/{CHECKPOINT_DIR}/{which}/{step}"}
