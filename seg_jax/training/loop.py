"""Train a seg_jax model: ``python -m seg_jax.train --config configs/convlstm.py [--workdir DIR]``.

With nothing else configured it trains on the public datasets prepared by ``python -m seg_jax.data.prepare``
(``--config.data.root=<dir>`` trains on a folder instead) in ``runs/<config>[-<variant>]``. On a CPU use
``:tiny`` to try it: the full recipes are GPU work (the ConvLSTM's costs ~30-40 s a step on 2 CPU cores;
``:public-gpu`` is the one-GPU recipe on the public data).

The entry point only parses flags; ``train_and_evaluate(config, workdir)`` does the work and can be called
from a notebook. A run resumes from the newest complete checkpoint in ``workdir`` (else starts from
``config.init_from``, else from scratch). Data parallelism: the global batch is sharded over the ``data`` axis
of a device mesh, parameters are replicated; multi-host runs call ``jax.distributed.initialize()`` first
(``--distributed`` or ``SEG_JAX_DISTRIBUTED=1``).
"""
from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import traverse_util
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from seg_jax.evaluation.metrics import add_sums, summarize
from seg_jax.models import build as model_build
from seg_jax.models.registry import get_spec
from seg_jax.training import checkpointing
from seg_jax.training.checks import ConfigError, check_config, check_resumable, check_trainable, check_workdir
from seg_jax.training.metric_writer import MetricWriter
from seg_jax.training.steps import (
    TrainState,
    create_train_state,
    evaluation_state,
    make_eval_step,
    make_optimizer,
    make_train_step,
)


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


class _CompileThenRun:
    """A jitted step compiled ahead of its first call, then run; multi-process runs meet at a barrier
    between compiling and the first run so no host enters a cross-process collective while another compiles.
    One compilation per input structure (a val source with an ``ignore`` map batches one more key)."""

    def __init__(self, jitted: Callable, name: str):
        self._jitted, self._name, self._compiled = jitted, name, {}

    def __call__(self, *args):
        key = jax.tree_util.tree_structure(args)
        if key not in self._compiled:
            self._compiled[key] = self._jitted.lower(*args).compile()
            checkpointing.sync_processes(f"compiled_{self._name}_{len(self._compiled)}")
        return self._compiled[key](*args)


def make_mesh() -> Mesh:
    """A 1-D mesh over every device of every process, axis name ``data``."""
    return Mesh(np.asarray(jax.devices()), ("data",))


def global_batch_from_local(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Each process passes its own shard; the result is the global batch sharded over ``data``. A batch already
    on a device (the device data pipeline) is resharded there, with no trip through host memory."""
    if jax.process_count() == 1:
        return {k: jax.device_put(v, sharding) if isinstance(v, jax.Array)
                else jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in batch.items()}


def global_batch_from_replicated(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Every process holds the whole batch (eval); each device takes its slice."""
    return {k: jax.make_array_from_callback(np.shape(v), sharding, lambda idx, v=np.asarray(v): v[idx])
            for k, v in batch.items()}


def evaluate_batches(eval_step: Callable, state: TrainState, batches: Iterable[Mapping[str, np.ndarray]],
                     sharding: NamedSharding, max_examples: int = 0, smooth: float = 1.0,
                     summarise: bool = True) -> dict[str, float]:
    """Sum metric totals over every batch (padding excluded) and summarise (``summarise`` False: the sums)."""
    total = None
    for batch in batches:
        total = add_sums(total, eval_step(state, global_batch_from_replicated(batch, sharding)))
        if max_examples and total["examples"] >= max_examples:
            break
    if total is None:
        raise ValueError("the evaluation split is empty; check config.data (source, root, val_fraction)")
    return summarize(total, smooth) if summarise else total


def validate(config, eval_step: Callable, state: TrainState, sharding: NamedSharding,
             temporal: bool) -> dict[str, float]:
    """The val metrics of ``state`` plus 'selection_loss', the number that picks the best checkpoint.

    ``config.val_selection`` 'pooled': the metrics over the whole split, selection_loss = its dice_loss.
    'source_mean': each real source scored on its own (``dice_loss_<source>`` keys; ``max_eval_examples`` per
    source), the pooled metrics summed from the same batches, selection_loss = the unweighted mean of the
    per-source dice_loss and, where the data root has person-free photos, of their val split's soft false-person
    share (``false_person_negatives``: the mean predicted alpha on images with no person).
    """
    from seg_jax import data

    def score(subset):
        return evaluate_batches(eval_step, state, data.build_eval_batches(config, "val", subset, temporal=temporal),
                                sharding, config.max_eval_examples, config.dice_smooth, summarise=False)

    if config.get("val_selection", "pooled") != "source_mean":
        val = summarize(score(None), config.dice_smooth)
        return {**val, "selection_loss": val["dice_loss"]}
    totals, per_source = None, {}
    for subset in data.SCORED_SUBSETS:
        try:
            total = score(subset)
        except ValueError:          # a source with no val examples (a partial data root)
            continue
        totals = add_sums(totals, total)
        per_source[f"dice_loss_{subset}"] = summarize(total, config.dice_smooth)["dice_loss"]
    if totals is None:
        raise ValueError("the evaluation split is empty; check config.data (source, root, val_fraction)")
    try:
        per_source["false_person_negatives"] = summarize(score(data.NEGATIVES), config.dice_smooth)[
            "soft_false_person"]
    except ValueError:              # no negatives/ under the data root
        pass
    return {**summarize(totals, config.dice_smooth), **per_source,
            "selection_loss": float(np.mean(list(per_source.values())))}


def _val_message(step: int, val: Mapping[str, float], improved: bool) -> str:
    by_source = "".join(f" {k[len('dice_loss_'):]}={v:.4f}" for k, v in val.items() if k.startswith("dice_loss_"))
    if "false_person_negatives" in val:
        by_source += f" false_person(negatives)={val['false_person_negatives']:.4f}"
    return (f"step {step}: val dice_loss={val['dice_loss']:.4f} dice={val['dice']:.4f} iou={val['iou']:.4f}"
            f"{by_source}{' (best)' if improved else ''}")


def _initial_variables(config, model, rng) -> dict:
    h, w = config.data.image_size
    return model_build.init_variables(model, config.model.name, rng, min(h, 64), min(w, 64))


def _apply_init_from(config, variables: dict) -> dict:
    """Load ``config.init_from``; ConvLSTM cells it does not provide start as near pass-throughs (see
    :mod:`seg_jax.convert.convlstm_warm_start`) unless ``config.convlstm_warm_start`` is 0, or, for residual
    cells (``config.model.residual_cells``), at zero: the per-frame model exactly."""
    from seg_jax import convert
    loaded = convert.load_init_variables(config.init_from, variables)
    scale = float(config.get("convlstm_warm_start", 0.0) or 0.0)
    if get_spec(config.model.name).temporal and scale > 0:
        key = ("decoder", "convlstm_0", "kernel")
        fresh = traverse_util.flatten_dict(variables["params"])[key]
        if np.array_equal(np.asarray(traverse_util.flatten_dict(loaded["params"])[key]), np.asarray(fresh)):
            from seg_jax.convert.convlstm_warm_start import warm_start_convlstm, zero_cells
            loaded = (zero_cells(loaded) if config.model.get("residual_cells", False) else
                      warm_start_convlstm(loaded, scale=scale, gate_activation=config.model.gate_activation))
    return loaded


class _PreemptionFlag:
    """Set by SIGTERM, SIGINT (Ctrl-C) or SIGHUP; the loop checkpoints at the next step boundary and exits
    cleanly. A second Ctrl-C while the first is pending raises KeyboardInterrupt at once (the last saved
    checkpoint is kept)."""

    SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")

    def __init__(self):
        self.requested = False
        self.signal_name = ""
        self._previous: dict = {}

    def __enter__(self):
        for name in self.SIGNALS:
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not in the main thread (e.g. some notebook runners): no preemption handling
                break
        return self

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


@jax.jit
def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))


def _is_finite_tree(tree) -> bool:
    return bool(_all_finite(tree))


def _orbax_uses_distributed_barriers() -> None:
    """Orbax syncs hosts with device collectives by default; on CPU (gloo) those time out after ~30 s of skew.
    Its distributed-runtime barriers wait as long as needed (absl flag, read when Orbax syncs)."""
    from absl import flags
    try:
        flags.FLAGS.experimental_orbax_use_distributed_barrier = True
    except (AttributeError, flags.Error):  # flag renamed in another Orbax version / flags not parsed
        pass


def _time_budget_spent(started: float, budget_s: float) -> bool:
    """True once ``budget_s`` seconds of this session's training have passed (0 = no budget). Every process
    takes process 0's answer, so all hosts stop at the same step."""
    if budget_s <= 0:
        return False
    spent = time.time() - started >= budget_s
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        spent = bool(multihost_utils.broadcast_one_to_all(np.asarray(spent)))
    return spent


def _update_loop_after_eval(loop: dict, val_loss: float, config) -> tuple[bool, bool]:
    """Reduce-on-plateau and early-stopping bookkeeping. Returns (improved, stop)."""
    improved = val_loss < loop["best_val_loss"] - 1e-6
    if improved:
        loop.update(best_val_loss=val_loss, evals_without_improvement=0, plateau_count=0)
    else:
        loop["evals_without_improvement"] += 1
        loop["plateau_count"] += 1
        if config.plateau_patience and loop["plateau_count"] >= config.plateau_patience:
            loop["lr_scale"] *= config.plateau_factor
            loop["plateau_count"] = 0
    stop = bool(config.early_stopping_patience) and loop["evals_without_improvement"] >= config.early_stopping_patience
    return improved, stop


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       progress: bool = True) -> dict[str, Any]:
    """Train ``config`` in ``workdir`` (resuming if it holds a checkpoint). Returns a summary dict.

    Raises ``TrainingDiverged`` on a NaN/Inf loss (with the step), ``ConfigError`` on bad config values,
    ``OSError`` on an unwritable workdir.
    """
    from seg_jax import data  # the data pipeline imports Grain/TFDS: keep it out of model-only imports
    from seg_jax.data import sources

    if sources.resolve_source(config) == "public":   # no data configured: the public data, checked in seconds
        from seg_jax.data.public import sources as public
        public.ready(config, warn=False)
    check_config(config)
    workdir = Path(workdir).absolute()
    check_workdir(workdir)
    is_main = jax.process_index() == 0
    if jax.process_count() > 1:
        _orbax_uses_distributed_barriers()
    check_resumable(workdir, config)
    if is_main:
        (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")

    model = model_build.build_model(config.model)
    mesh = make_mesh()
    replicated = NamedSharding(mesh, P())
    data_sharding = NamedSharding(mesh, P("data"))

    rng = jax.random.PRNGKey(config.seed)
    init_rng, state_rng = jax.random.split(rng)
    variables = _initial_variables(config, model, init_rng)
    check_trainable(config, variables["params"])
    optimizer = make_optimizer(config)
    use_ema = float(config.get("ema_decay", 0.0) or 0.0) > 0
    state = create_train_state(variables, optimizer, state_rng, ema=use_ema)

    ckpts = checkpointing.TrainingCheckpoints(workdir, keep_latest=config.keep_checkpoints)
    temporal = get_spec(config.model.name).temporal
    train_iter = data.build_train_iterator(config, seed=config.seed, shard_index=jax.process_index(),
                                           shard_count=jax.process_count(), temporal=temporal)
    loop = {"best_val_loss": math.inf, "evals_without_improvement": 0, "plateau_count": 0, "lr_scale": 1.0,
            "stopped_early": False, "last_val": {}}
    start = "scratch"
    if ckpts.latest_step() is not None:
        abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), state)
        state, loop, data_state = ckpts.restore(abstract)
        train_iter.set_state(data_state)
        start = f"resumed from step {int(state.step)}"
    elif config.init_from:
        variables = _apply_init_from(config, variables)
        state = create_train_state(variables, optimizer, state_rng, ema=use_ema)
        start = f"initialised from {config.init_from}"
    state = jax.device_put(state, replicated)

    train_step = _CompileThenRun(make_train_step(model, config.model.name, config,
                                                 in_shardings=(replicated, data_sharding),
                                                 out_shardings=(replicated, replicated)), "train_step")
    eval_step = _CompileThenRun(make_eval_step(model, config.model.name, config,
                                               in_shardings=(replicated, data_sharding), out_shardings=replicated),
                                "eval_step")
    writer = MetricWriter(workdir, enabled=is_main)
    first_step = int(jax.device_get(state.step))
    if is_main:
        print(f"seg_jax.train: model={config.model.name} ({model_build.count_parameters(variables):,} parameters), "
              f"devices={jax.device_count()} ({jax.default_backend()}), processes={jax.process_count()}, "
              f"workdir={workdir}, {start}", flush=True)

    bar = None
    if progress and is_main:
        from tqdm.auto import tqdm
        bar = tqdm(total=config.num_steps, initial=first_step, desc="train", dynamic_ncols=True)

    def save(best: bool):
        if not _is_finite_tree(state.params):
            raise TrainingDiverged(f"parameters are NaN/Inf at step {step}; not saving, the last good checkpoint "
                                   f"in {workdir} is kept; lower config.learning_rate or set config.grad_clip_norm")
        ckpts.save(state, loop, train_iter.get_state(), best=best)

    step = first_step
    status = "completed"
    t0 = session_start = time.time()
    budget_s = float(config.get("max_train_seconds", 0) or 0)
    out_of_time = False
    previous_metrics = None
    if config.get("eval_at_start", False) and not start.startswith("resumed"):
        # the starting weights' val score is the bar every later checkpoint must beat to become 'best'
        val = validate(config, eval_step, evaluation_state(state), data_sharding, temporal)
        _update_loop_after_eval(loop, val["selection_loss"], config)
        loop["last_val"] = val
        writer.write(step, "val", {**val, "lr_scale": loop["lr_scale"]})
        if is_main:
            print(_val_message(step, val, True) + " (the starting weights)", flush=True)
        save(best=True)
    with _PreemptionFlag() as preemption:
        while step < config.num_steps:
            batch = global_batch_from_local(next(train_iter), data_sharding)
            state, metrics = train_step(state, batch)
            step += 1
            # Keep at most one step in flight: without this, asynchronous dispatch lets the host run many steps
            # ahead of the device, and SIGTERM or the time budget would be honoured only that many steps late.
            if previous_metrics is not None:
                jax.block_until_ready(previous_metrics)
            previous_metrics = metrics
            if step % config.log_every == 0 or step == config.num_steps:
                metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
                if not math.isfinite(metrics["loss"]):
                    raise TrainingDiverged(f"loss is {metrics['loss']} at step {step}; stopping. The last good "
                                           f"checkpoint in {workdir} is kept; lower config.learning_rate or set "
                                           f"config.grad_clip_norm")
                metrics["steps_per_sec"] = config.log_every / max(time.time() - t0, 1e-9)
                t0 = time.time()
                writer.write(step, "train", metrics)
                if bar is not None:
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", dice=f"{metrics['dice']:.3f}",
                                    lr=f"{metrics['learning_rate']:.1e}")
            if bar is not None:
                bar.update(1)
            improved = False
            if step % config.log_every == 0 and _time_budget_spent(session_start, budget_s):
                out_of_time = True
            if step % config.eval_every == 0 or step == config.num_steps or out_of_time:
                val = validate(config, eval_step, evaluation_state(state), data_sharding, temporal)
                improved, stop = _update_loop_after_eval(loop, val["selection_loss"], config)
                loop["last_val"] = val
                # From host data on every process: device_put of a one-device jax array onto a sharding that spans
                # other processes builds an array that Orbax cannot save.
                lr_scale = np.float32(loop["lr_scale"])
                state = state.replace(lr_scale=jax.make_array_from_callback((), replicated, lambda _: lr_scale))
                writer.write(step, "val", {**val, "lr_scale": loop["lr_scale"]})
                if is_main:
                    (bar.write if bar is not None else print)(_val_message(step, val, improved))
                if stop:
                    loop["stopped_early"] = True
                    status = f"early stopping after {config.early_stopping_patience} evaluations without improvement"
            if (improved or step % config.checkpoint_every == 0 or step == config.num_steps or preemption.requested
                    or loop["stopped_early"] or out_of_time):
                save(best=improved)
            if preemption.requested:
                how = "preempted" if preemption.signal_name == "SIGTERM" else "stopped"
                status = (f"{how} ({preemption.signal_name}): checkpoint saved at step {step}; rerun the same "
                          "command to resume")
                break
            if loop["stopped_early"]:
                break
            if out_of_time:
                status = (f"stopped by the time budget of {budget_s:.0f} s (config.max_train_seconds; rerun the same "
                          f"command to continue)")
                break
    if bar is not None:
        bar.close()
    writer.flush()
    writer.close()
    ckpts.close()
    if is_main:
        print(f"seg_jax.train: {status} at step {step}; best val "
              f"{'dice_loss' if config.val_selection == 'pooled' else 'source-mean dice_loss'}="
              f"{loop['best_val_loss']:.4f}", flush=True)
    return {"step": step, "status": status, "best_val_loss": loop["best_val_loss"], "last_val": loop["last_val"],
            "workdir": str(workdir), "state": state}


def maybe_initialize_distributed(enabled: bool) -> None:
    """Join a multi-host run (coordinator, process id and count from flags-free env/cluster auto-detection)."""
    if enabled or os.environ.get("SEG_JAX_DISTRIBUTED") == "1":
        kwargs = {}
        if os.environ.get("SEG_JAX_COORDINATOR"):
            kwargs = dict(coordinator_address=os.environ["SEG_JAX_COORDINATOR"],
                          num_processes=int(os.environ["SEG_JAX_NUM_PROCESSES"]),
                          process_id=int(os.environ["SEG_JAX_PROCESS_ID"]))
        jax.distributed.initialize(**kwargs)


def default_workdir(config_argument: str) -> str:
    """``--config configs/convlstm.py:tiny`` -> ``runs/convlstm-tiny`` (``runs/convlstm`` without a variant)."""
    path, _, variant = str(config_argument).partition(":")
    stem = Path(path).stem
    return str(Path("runs") / (f"{stem}-{variant}" if variant else stem))


def main(argv=None) -> None:
    from absl import app, flags
    from ml_collections import config_flags

    config_flags.DEFINE_config_file("config", None,
                                    "Config file, e.g. configs/mobilenet.py or configs/convlstm.py:tiny",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and TensorBoard logs go (resumed if present); "
                        "default runs/<config file name>[-<variant>], e.g. runs/convlstm for configs/convlstm.py.")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host; see launch/README.md).")
    flags.DEFINE_bool("progress", True, "Show a progress bar.")
    flags.mark_flags_as_required(["config"])

    def run(_):

        from absl import logging

        from seg_jax.common.exit_codes import fail
        from seg_jax.data.public.store import PublicDataError
        logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
        maybe_initialize_distributed(flags.FLAGS.distributed)
        if flags.FLAGS.workdir == "":
            fail("seg_jax.training.loop", "--workdir is empty; give a folder, or leave the flag out for "
                 "runs/<config>[-<variant>]")
        workdir = flags.FLAGS.workdir or default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
        try:
            train_and_evaluate(flags.FLAGS.config, workdir, progress=flags.FLAGS.progress)
        except (PublicDataError, ConfigError, TrainingDiverged, FileNotFoundError, OSError, ValueError) as e:
            fail("seg_jax.training.loop", str(e))

    from seg_jax.configs.flags import parser_for
    app.run(run, argv=argv, flags_parser=parser_for("seg_jax.training.loop", doc=__doc__ or ""))


if __name__ == "__main__":
    main()
