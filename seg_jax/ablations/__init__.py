"""Ablation sweeps: one command trains and evaluates a list of config variants and writes a results table.

  python -m seg_jax.ablations --sweep configs/ablations/loss.py --out runs/ablations/loss
  python -m seg_jax.ablations --sweep configs/ablations/clip_length.py --out /tmp/clip --tiny   # seconds, CPU

A sweep file defines ``get_sweep(arg=None) -> dict`` with:

- ``base``: a config spec (``"configs/mobilenet.py"`` or ``"configs/mobilenet.py:cpu"``, relative to the
  repository root or absolute) or an ``ml_collections.ConfigDict``;
- ``base_overrides``: ``{dotted.key: value}`` applied to every run (the scale: data root, steps, size...);
- ``runs``: ``{run_name: {dotted.key: value}}`` (ordered), the ablated settings;
- optional ``eval_split`` (default ``"val"``), ``eval_subsets`` (e.g. ``["portraits", "people"]`` for the real
  data; ``None`` = the whole split), ``metrics`` (columns of the table), ``title``, ``notes`` (markdown).

Each run trains with :func:`seg_jax.training.loop.train_and_evaluate` in ``<out>/runs/<run_name>`` (resumable: a rerun
resumes an interrupted run and skips finished ones, i.e. those with a ``result.json`` for the same config),
then its best checkpoint is evaluated with the paper's resized protocol. ``<out>`` receives ``results.json``,
``results.md`` (a markdown table) and ``results.png`` (bars per metric, plus the validation curves).

``--tiny`` shrinks every run to the ``tiny`` variant (synthetic 64x64 data, 4 steps): the sweep's
``base_overrides`` are skipped, the tiny variant is applied, then each run's own overrides (so the ablated axis
is kept), then ``--set`` overrides. Without ``--tiny``: base -> base_overrides -> run overrides -> ``--set``.
"""
from seg_jax.ablations.sweep import build_run_config, load_sweep, run_sweep, set_dotted, write_results

__all__ = ["build_run_config", "load_sweep", "run_sweep", "set_dotted", "write_results"]
