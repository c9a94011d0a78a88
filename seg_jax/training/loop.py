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

import dataclasses
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
from absl import app, flags, logging
from flax import traverse_util
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from ml_collections import config_flags
from tqdm.auto import tqdm

from seg_jax import convert, data
from seg_jax.common.exit_codes import fail
from seg_jax.common.writer import write_text
from seg_jax.configs.flags import parser_for
from seg_jax.convert.convlstm_warm_start import warm_start_convlstm, zero_cells
from seg_jax.data.public import sources as public_sources
from seg_jax.data.public.store import PublicDataError
from seg_jax.data.sources import resolve_source
from seg_jax.evaluation.metrics import add_sums, summarize
from seg_jax.evaluation.person_recall import COUNT_KEYS, PEOPLE_CENTRIC, add_counts, summarize_recall
from seg_jax.models import build as model_build
from seg_jax.models.registry import get_spec
from seg_jax.training import checkpointing
from seg_jax.training.checks import ConfigError, check_config, check_resumable, check_trainable, check_workdir
from seg_jax.training.metric_writer import MetricWriter
from seg_jax.training.optimizer import make_optimizer, with_plateau_scale
from seg_jax.training.steps import TrainState, create_train_state, evaluation_state, make_eval_step, make_train_step
from seg_jax.training.workdir_lock import workdir_lock


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
    share (``false_person_negatives``: the mean predicted alpha on images with no person); CamVid counts as a
    source where the root has it. With ``config.val_person_recall`` the mean also takes ``person_miss`` = 1 - the
    person recall pooled over the people-centric sources (:func:`pooled_person_recall`).
    """
    def score(subset):
        return evaluate_batches(eval_step, state, data.build_eval_batches(config, "val", subset, temporal=temporal),
                                sharding, config.max_eval_examples, config.dice_smooth, summarise=False)

    if config.val_selection != "source_mean":
        val = summarize(score(None), config.dice_smooth)
        return {**val, "selection_loss": val["dice_loss"]}
    totals, per_source, by_source = None, {}, {}
    for subset in data.SCORED_SUBSETS:
        try:
            total = score(subset)
        except ValueError:          # a source with no val examples (a partial data root)
            continue
        totals, by_source[subset] = add_sums(totals, total), total
        per_source[f"dice_loss_{subset}"] = summarize(total, config.dice_smooth)["dice_loss"]
    recall = pooled_person_recall(by_source) if config.val_person_recall else None
    if recall is not None:
        per_source["person_miss"] = 1.0 - recall
    if totals is None:
        raise ValueError("the evaluation split is empty; check config.data (source, root, val_fraction)")
    try:
        per_source["false_person_negatives"] = summarize(score(data.NEGATIVES), config.dice_smooth)[
            "soft_false_person"]
    except ValueError:              # no negatives/ under the data root
        pass
    return {**summarize(totals, config.dice_smooth), **per_source,
            "selection_loss": float(np.mean(list(per_source.values())))}


def pooled_person_recall(by_source: Mapping[str, Mapping[str, float]]) -> float | None:
    """{source: metric sums with people counts} -> person recall pooled over the people-centric sources
    (:data:`seg_jax.evaluation.person_recall.PEOPLE_CENTRIC`) present; None when they hold no counted person."""
    counts = None
    for source in PEOPLE_CENTRIC:
        if "people" in by_source.get(source, {}):
            counts = add_counts(counts, {k: by_source[source][k] for k in COUNT_KEYS})
    return None if not counts or counts["people"] <= 0 else summarize_recall(counts)["person_recall"]


def _val_message(step: int, val: Mapping[str, float], improved: bool) -> str:
    by_source = "".join(f" {k[len('dice_loss_'):]}={v:.4f}" for k, v in val.items() if k.startswith("dice_loss_"))
    if "false_person_negatives" in val:
        by_source += f" false_person(negatives)={val['false_person_negatives']:.4f}"
    if "person_miss" in val:
        by_source += f" person_recall={1.0 - val['person_miss']:.4f}"
    return (f"step {step}: val dice_loss={val['dice_loss']:.4f} dice={val['dice']:.4f} iou={val['iou']:.4f}"
            f"{by_source}{' (best)' if improved else ''}")


def _initial_variables(config, model, rng) -> dict:
    h, w = config.data.image_size
    return model_build.init_variables(model, config.model.name, rng, min(h, 64), min(w, 64))


def _apply_init_from(config, variables: dict) -> dict:
    """Load ``config.init_from``; ConvLSTM cells it does not provide start as near pass-throughs (see
    :mod:`seg_jax.convert.convlstm_warm_start`) unless ``config.convlstm_warm_start`` is 0, or, for residual
    cells (``config.model.residual_cells``), at zero: the per-frame model exactly."""
    loaded = convert.load_init_variables(config.init_from, variables)
    scale = float(config.convlstm_warm_start)
    if get_spec(config.model.name).temporal and scale > 0:
        key = ("decoder", "convlstm_0", "kernel")
        fresh = traverse_util.flatten_dict(variables["params"])[key]
        if np.array_equal(np.asarray(traverse_util.flatten_dict(loaded["params"])[key]), np.asarray(fresh)):
            loaded = (zero_cells(loaded) if config.model.residual_cells else
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
        spent = bool(multihost_utils.broadcast_one_to_all(np.asarray(spent)))
    return spent


@dataclasses.dataclass
class LoopRecord:
    """The host loop's bookkeeping, saved with every checkpoint (as JSON) so a resumed run continues it exactly:
    the best selection loss so far, the plateau and early-stopping counters, the plateau scale of the learning
    rate, whether early stopping fired, and the last validation metrics."""
    best_val_loss: float = math.inf
    evals_without_improvement: int = 0
    plateau_count: int = 0
    plateau_scale: float = 1.0
    stopped_early: bool = False
    last_val: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def from_json(cls, saved: Mapping[str, Any]) -> "LoopRecord":
        saved = dict(saved)
        if "lr_scale" in saved:          # checkpoints written before the scale moved into the optimizer
            saved["plateau_scale"] = saved.pop("lr_scale")
        return cls(**{f.name: saved[f.name] for f in dataclasses.fields(cls) if f.name in saved})

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    def after_eval(self, val_loss: float, config) -> tuple[bool, bool]:
        """Reduce-on-plateau and early-stopping bookkeeping after one validation. Returns (improved, stop)."""
        improved = val_loss < self.best_val_loss - 1e-6
        if improved:
            self.best_val_loss, self.evals_without_improvement, self.plateau_count = val_loss, 0, 0
        else:
            self.evals_without_improvement += 1
            self.plateau_count += 1
            if config.plateau_patience and self.plateau_count >= config.plateau_patience:
                self.plateau_scale *= config.plateau_factor
                self.plateau_count = 0
        stop = bool(config.early_stopping_patience) and \
            self.evals_without_improvement >= config.early_stopping_patience
        return improved, stop


@dataclasses.dataclass
class TrainingRun:
    """Everything :func:`setup` prepares for the loop: the config and workdir, the state (sharded), the data,
    the compiled steps, the checkpoints, the metric writer and the loop record."""
    config: ml_collections.ConfigDict
    workdir: Path
    state: TrainState
    train_iter: Any
    train_step: Callable
    eval_step: Callable
    checkpoints: checkpointing.TrainingCheckpoints
    writer: MetricWriter
    record: LoopRecord
    replicated: NamedSharding
    data_sharding: NamedSharding
    temporal: bool
    start: str                      # 'scratch' | 'resumed from step N' | 'initialised from X'
    is_main: bool

    def validate(self) -> dict[str, float]:
        return validate(self.config, self.eval_step, evaluation_state(self.state), self.data_sharding, self.temporal)

    def save(self, *, best: bool) -> None:
        if not _is_finite_tree(self.state.params):
            raise TrainingDiverged(f"parameters are NaN/Inf at step {int(self.state.step)}; not saving, the last "
                                   f"good checkpoint in {self.workdir} is kept; lower config.learning_rate or set "
                                   f"config.grad_clip_norm")
        self.checkpoints.save(self.state, self.record.to_json(), self.train_iter.get_state(), best=best)

    def set_plateau_scale(self) -> None:
        """Push the record's plateau scale into the optimizer state (from host data on every process: a
        one-device array put onto a sharding that spans other processes is one Orbax cannot save)."""
        scale = np.float32(self.record.plateau_scale)
        scale = jax.make_array_from_callback((), self.replicated, lambda _: scale)
        self.state = self.state.replace(opt_state=with_plateau_scale(self.state.opt_state, scale))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
        self.checkpoints.close()


def _preflight(config, workdir: Path) -> None:
    """The checks that run before anything is written (a failure leaves no workdir behind)."""
    if resolve_source(config) == "public":   # no data configured: the public data, checked in seconds
        public_sources.ready(config, warn=False)
    check_config(config)
    check_workdir(workdir)
    if jax.process_count() > 1:
        _orbax_uses_distributed_barriers()
    check_resumable(workdir, config)


def setup(config: ml_collections.ConfigDict, workdir: Path) -> TrainingRun:
    """Check, build and restore: the state resumes from the newest checkpoint in ``workdir``, else starts from
    ``config.init_from``, else from scratch. The caller holds the workdir's lock and has run the checks."""
    if jax.process_index() == 0:
        write_text(workdir / "config.json", config.to_json_best_effort(indent=2) + "\n", option="--workdir")
    model = model_build.build_model(config.model)
    mesh = make_mesh()
    replicated, data_sharding = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(config.seed))
    variables = _initial_variables(config, model, init_rng)
    check_trainable(config, variables["params"])
    optimizer = make_optimizer(config)
    ema = float(config.ema_decay) > 0
    state = create_train_state(variables, optimizer, state_rng, ema=ema)
    checkpoints = checkpointing.TrainingCheckpoints(workdir, keep_latest=config.keep_checkpoints)
    temporal = get_spec(config.model.name).temporal
    train_iter = data.build_train_iterator(config, seed=config.seed, shard_index=jax.process_index(),
                                           shard_count=jax.process_count(), temporal=temporal)
    record, start = LoopRecord(), "scratch"
    if checkpoints.latest_step() is not None:
        abstract = jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), state)
        state, saved_record, data_state = checkpoints.restore(abstract)
        record = LoopRecord.from_json(saved_record)
        train_iter.set_state(data_state)
        start = f"resumed from step {int(state.step)}"
    elif config.init_from:
        variables = _apply_init_from(config, variables)
        state = create_train_state(variables, optimizer, state_rng, ema=ema)
        start = f"initialised from {config.init_from}"
    name = config.model.name
    train_step = make_train_step(model, name, config, in_shardings=(replicated, data_sharding),
                                 out_shardings=(replicated, replicated))
    eval_step = make_eval_step(model, name, config, in_shardings=(replicated, data_sharding), out_shardings=replicated)
    is_main = jax.process_index() == 0
    if is_main:
        print(f"seg_jax.train: model={name} ({model_build.count_parameters(variables):,} parameters), "
              f"devices={jax.device_count()} ({jax.default_backend()}), processes={jax.process_count()}, "
              f"workdir={workdir}, {start}", flush=True)
    return TrainingRun(config=config, workdir=workdir, state=jax.device_put(state, replicated), train_iter=train_iter,
                       train_step=_CompileThenRun(train_step, "train_step"),
                       eval_step=_CompileThenRun(eval_step, "eval_step"), checkpoints=checkpoints,
                       writer=MetricWriter(workdir, enabled=is_main), record=record, replicated=replicated,
                       data_sharding=data_sharding, temporal=temporal, start=start, is_main=is_main)


def _due(step: int, every: int, last: int) -> bool:
    """True on every ``every``-th step and on the last step of the run."""
    return step % every == 0 or step == last


def _log_train(run: TrainingRun, step: int, metrics, seconds: float, bar) -> None:
    """Write the step's training metrics (host floats); a non-finite loss stops the run."""
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    if not math.isfinite(metrics["loss"]):
        raise TrainingDiverged(f"loss is {metrics['loss']} at step {step}; stopping. The last good checkpoint in "
                               f"{run.workdir} is kept; lower config.learning_rate or set config.grad_clip_norm")
    metrics["steps_per_sec"] = run.config.log_every / max(seconds, 1e-9)
    run.writer.write(step, "train", metrics)
    if bar is not None:
        bar.set_postfix(loss=f"{metrics['loss']:.4f}", dice=f"{metrics['dice']:.3f}",
                        lr=f"{metrics['learning_rate']:.1e}")


def _evaluate(run: TrainingRun, step: int, bar, note: str = "") -> bool:
    """Validate, update the loop record and the plateau scale, record the metrics. Returns whether the selection
    loss improved (a new best checkpoint)."""
    val = run.validate()
    improved, stop = run.record.after_eval(val["selection_loss"], run.config)
    run.record.last_val = val
    run.record.stopped_early = run.record.stopped_early or stop
    run.set_plateau_scale()
    run.writer.write(step, "val", {**val, "plateau_scale": run.record.plateau_scale})
    if run.is_main:
        (bar.write if bar is not None else print)(_val_message(step, val, improved or bool(note)) + note)
    return improved


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       progress: bool = True) -> dict[str, Any]:
    """Train ``config`` in ``workdir`` (resuming if it holds a checkpoint). Returns a summary dict
    (step, status, best_val_loss, last_val, workdir, state, signal: the name of a stopping signal or '').

    Raises ``TrainingDiverged`` on a NaN/Inf loss (with the step), ``ConfigError`` on bad config values,
    ``OSError`` on an unwritable workdir, ``WorkdirBusy`` while another training uses it.
    """
    workdir = Path(workdir).absolute()
    _preflight(config, workdir)
    with workdir_lock(workdir, jax.process_index()):      # one training per workdir
        return _train(setup(config, workdir), progress)


def _train(run: TrainingRun, progress: bool) -> dict[str, Any]:
    """The loop of :func:`train_and_evaluate` over a prepared run."""
    config = run.config
    step = first_step = int(jax.device_get(run.state.step))
    bar = tqdm(total=config.num_steps, initial=first_step, desc="train", dynamic_ncols=True) \
        if progress and run.is_main else None
    if config.eval_at_start and not run.start.startswith("resumed"):
        # the starting weights' val score is the bar every later checkpoint must beat to become 'best'
        _evaluate(run, step, bar, note=" (the starting weights)")
        run.save(best=True)
    status, stop_signal, out_of_time = "completed", "", False
    t0 = session_start = time.time()
    previous_metrics = None
    with _PreemptionFlag() as preemption:
        while step < config.num_steps:
            run.state, metrics = run.train_step(run.state, global_batch_from_local(next(run.train_iter),
                                                                                   run.data_sharding))
            step += 1
            # At most one step in flight: otherwise asynchronous dispatch lets the host run many steps ahead of
            # the device, and SIGTERM or the time budget would be honoured only that many steps late.
            if previous_metrics is not None:
                jax.block_until_ready(previous_metrics)
            previous_metrics = metrics
            if _due(step, config.log_every, config.num_steps):
                _log_train(run, step, metrics, time.time() - t0, bar)
                t0 = time.time()
            if bar is not None:
                bar.update(1)
            if step % config.log_every == 0 and _time_budget_spent(session_start, config.max_train_seconds):
                out_of_time = True
            improved = _evaluate(run, step, bar) if _due(step, config.eval_every, config.num_steps) or out_of_time \
                else False
            if (improved or _due(step, config.checkpoint_every, config.num_steps) or preemption.requested
                    or run.record.stopped_early or out_of_time):
                run.save(best=improved)
            if preemption.requested:
                stop_signal = preemption.signal_name
                how = "preempted" if stop_signal == "SIGTERM" else "stopped"
                status = f"{how} ({stop_signal}): checkpoint saved at step {step}; rerun the same command to resume"
                break
            if run.record.stopped_early:
                status = f"early stopping after {config.early_stopping_patience} evaluations without improvement"
                break
            if out_of_time:
                status = (f"stopped by the time budget of {config.max_train_seconds:.0f} s "
                          f"(config.max_train_seconds; rerun the same command to continue)")
                break
    if bar is not None:
        bar.close()
    run.close()
    if run.is_main:
        print(f"seg_jax.train: {status} at step {step}; best val "
              f"{'dice_loss' if config.val_selection == 'pooled' else 'source-mean dice_loss'}="
              f"{run.record.best_val_loss:.4f}", flush=True)
    return {"step": step, "status": status, "best_val_loss": run.record.best_val_loss,
            "last_val": run.record.last_val, "workdir": str(run.workdir), "state": run.state, "signal": stop_signal}


def exit_code(result: dict) -> int:
    """The process's exit code for a finished :func:`train_and_evaluate` (:mod:`seg_jax.common.exit_codes`): 128 + N
    when signal N stopped it (its checkpoint is saved: 143 for SIGTERM, 130 for Ctrl-C), else 0."""
    name = result.get("signal") or ""
    return 128 + int(signal.Signals[name]) if name else 0


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
    """``python -m seg_jax.train``: exit 0 when the run ends (completed, early stopping, time budget), 2 with one
    line on a problem the user can fix, 128 + N after a checkpoint on signal N (SIGTERM, SIGINT, SIGHUP)."""
    config_flags.DEFINE_config_file("config", None,
                                    "Config file, e.g. configs/mobilenet.py or configs/convlstm.py:tiny",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "Where checkpoints, metrics and TensorBoard logs go (resumed if present); "
                        "default runs/<config file name>[-<variant>], e.g. runs/convlstm for configs/convlstm.py.")
    flags.DEFINE_bool("distributed", False, "Call jax.distributed.initialize() (multi-host; see launch/README.md).")
    flags.DEFINE_bool("progress", True, "Show a progress bar.")
    flags.mark_flags_as_required(["config"])

    def run(_):
        logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
        maybe_initialize_distributed(flags.FLAGS.distributed)
        if flags.FLAGS.workdir == "":
            fail("seg_jax.train", "--workdir is empty; give a folder, or leave the flag out for "
                 "runs/<config>[-<variant>]")
        workdir = flags.FLAGS.workdir or default_workdir(config_flags.get_config_filename(flags.FLAGS["config"]))
        try:
            result = train_and_evaluate(flags.FLAGS.config, workdir, progress=flags.FLAGS.progress)
        except (PublicDataError, ConfigError, TrainingDiverged, FileNotFoundError, OSError, ValueError) as e:
            fail("seg_jax.train", str(e))
        if exit_code(result):
            raise SystemExit(exit_code(result))

    app.run(run, argv=argv, flags_parser=parser_for("seg_jax.train", doc=__doc__ or ""))


if __name__ == "__main__":
    main()
