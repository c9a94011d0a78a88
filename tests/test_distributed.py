"""Data parallelism on a device mesh (8 forced CPU devices) and a real 2-process run on localhost.

Device counts and ``jax.distributed`` must be set before JAX starts, so each case runs in subprocesses. The
tiny narrow U-Net config of ``test_resume`` keeps compiles short; the persistent compilation cache of
``tests/conftest.py`` is shared with them.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
from test_resume import checkpoint_steps, read_checkpoint, train_command, write_test_config

REPO = Path(__file__).resolve().parents[1]

ONE_STEP_ON_8_DEVICES_VS_1 = r'''
import json, sys
import importlib.util
import jax, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from seg_jax.training import loop as train
from seg_jax.models import build as model_build
from seg_jax.training.optimizer import make_optimizer
from seg_jax.training.steps import create_train_state, make_train_step

spec = importlib.util.spec_from_file_location("cfg", sys.argv[1]); cfg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cfg)
config = cfg.get_config()
config.batch_size = 8
assert jax.device_count() == 8, jax.devices()
model = model_build.build_model(config.model)
# a host copy: the steps donate their inputs
variables = jax.device_get(model_build.init_variables(model, "unet", jax.random.PRNGKey(0), 64, 64))
rng = np.random.default_rng(0)
batch = {"image": rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8),
         "mask": (rng.random((8, 64, 64, 1)) > 0.5).astype(np.uint8) * 255}

def one_step(mesh):
    replicated, data = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))
    state = jax.device_put(create_train_state(variables, make_optimizer(config), jax.random.PRNGKey(1)), replicated)
    step = make_train_step(model, "unet", config, in_shardings=(replicated, data),
                           out_shardings=(replicated, replicated))
    global_batch = train.global_batch_from_local(batch, data)
    assert len(global_batch["image"].sharding.device_set) == mesh.size
    state, metrics = step(state, global_batch)
    return jax.device_get(state), {k: float(v) for k, v in metrics.items()}

(s8, m8), (s1, m1) = one_step(train.make_mesh()), one_step(Mesh(np.asarray(jax.devices()[:1]), ("data",)))
diffs = [float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
         for a, b in zip(jax.tree_util.tree_leaves(s8), jax.tree_util.tree_leaves(s1))]
# Tolerance: 1% of one Adam step (the step moves each weight by ~learning_rate). Exception: the biases of the
# convolutions that feed a BatchNorm have an exactly-zero true gradient, so theirs is rounding noise that depends
# on the reduction order and that Adam rescales (up to a full step): only check that they moved by <= 1 step.
atol = 0.01 * config.learning_rate
degenerate = 0
for (path, a), b in zip(jax.tree_util.tree_flatten_with_path(s8.params)[0], jax.tree_util.tree_leaves(s1.params)):
    name = jax.tree_util.keystr(path)
    if "conv_" in name and name.endswith("['bias']"):
        degenerate += 1
        np.testing.assert_array_less(np.abs(a - b), 2.01 * config.learning_rate)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=atol, err_msg=name)
for a, b in zip(jax.tree_util.tree_leaves(s8.batch_stats), jax.tree_util.tree_leaves(s1.batch_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
update = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree_util.tree_leaves(s1.params),
                                                          jax.tree_util.tree_leaves(variables["params"])))
print(json.dumps({"max_abs_diff": max(diffs), "max_param_update": update, "tolerance": atol, "loss_8": m8["loss"],
                  "loss_1": m1["loss"], "leaves": len(diffs), "bias_before_batchnorm_leaves": degenerate}))
'''


def test_one_step_on_8_devices_equals_1_device(tmp_path):
    config_path = write_test_config(tmp_path)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", ONE_STEP_ON_8_DEVICES_VS_1, str(config_path)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print("8 devices vs 1:", result)
    assert result["max_param_update"] > 50 * result["tolerance"]  # the step moved the weights far more
    assert abs(result["loss_8"] - result["loss_1"]) < 1e-5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_in_lockstep_and_write_one_checkpoint(tmp_path):
    config_path = write_test_config(tmp_path)
    workdir = tmp_path / "run"
    num_steps = 4
    cmd = train_command(config_path, workdir, f"--config.num_steps={num_steps}", "--distributed")
    coordinator = f"127.0.0.1:{_free_port()}"
    procs, logs = [], []
    for i in range(2):
        env = dict(os.environ, JAX_PLATFORMS="cpu", SEG_JAX_COORDINATOR=coordinator, SEG_JAX_NUM_PROCESSES="2",
                   SEG_JAX_PROCESS_ID=str(i))
        env.pop("XLA_FLAGS", None)
        logs.append(tmp_path / f"process_{i}.log")
        procs.append(subprocess.Popen(cmd, env=env, cwd=REPO, stdout=logs[-1].open("w"), stderr=subprocess.STDOUT))
    try:
        for p in procs:
            p.wait(timeout=300)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = [log.read_text() for log in logs]
    for i, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"process {i} exit code {p.returncode}:\n{out[-4000:]}"
    print("process 0 output:\n" + "\n".join(l for l in outs[0].splitlines() if l.startswith(("seg_jax", "step"))))
    assert "devices=2 (cpu), processes=2" in outs[0]
    assert f"completed at step {num_steps}" in outs[0]
    assert "seg_jax.train:" not in outs[1] and "val dice_loss" not in outs[1], "only process 0 writes logs"
    # One checkpoint per saved step, written jointly; it restores to the global state of step num_steps.
    assert checkpoint_steps(workdir) == [num_steps - 2, num_steps]
    got = read_checkpoint(workdir)
    assert int(got["state"]["step"]) == num_steps
    assert all(np.all(np.isfinite(x)) for x in jax.tree_util.tree_leaves(got["state"]["params"]))
    # Each process read its own half of every global batch (Grain shard = process index), same position.
    assert got["data"]["state"] == {"next_index": num_steps}, got["data"]
    # The metric logs come from process 0 only: one line per step.
    train_lines = [json.loads(l) for f in workdir.rglob("*.jsonl") for l in f.read_text().splitlines()
                   if '"train"' in l]
    if train_lines:
        assert len(train_lines) == num_steps
