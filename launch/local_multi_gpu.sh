#!/usr/bin/env bash
# Train on every GPU of one machine. Usage (from the repository root):
#
#   launch/local_multi_gpu.sh --config configs/unet.py --workdir runs/unet
#
# Default: ONE process that sees all local GPUs (jax.devices() = all of them); the global batch is sharded over
# the `data` mesh axis, parameters are replicated. config.batch_size must be divisible by the GPU count.
#
# NUM_PROCESSES=N runs N processes on this machine instead (one per GPU, the multi-host code path on one box;
# also how the CPU test runs it): each process gets GPU i via CUDA_VISIBLE_DEVICES and joins
# jax.distributed through a coordinator on 127.0.0.1. With JAX_PLATFORMS=cpu it works without GPUs.
# Extra arguments go to `python -m seg_jax.train` unchanged (e.g. --config.batch_size=64).
set -euo pipefail
NUM_PROCESSES="${NUM_PROCESSES:-1}"
PYTHON="${PYTHON:-python}"

if [[ "$NUM_PROCESSES" == "1" ]]; then
  exec "$PYTHON" -m seg_jax.train "$@"
fi

PORT="${PORT:-$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
LOG_DIR="${LOG_DIR:-/tmp/seg_jax_local_$$}"
mkdir -p "$LOG_DIR"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap cleanup INT TERM   # Ctrl-C / preemption: every process checkpoints at its next step and exits
for ((i = 0; i < NUM_PROCESSES; i++)); do
  if [[ "${JAX_PLATFORMS:-}" != "cpu" ]]; then export CUDA_VISIBLE_DEVICES="$i"; fi
  SEG_JAX_COORDINATOR="127.0.0.1:$PORT" SEG_JAX_NUM_PROCESSES="$NUM_PROCESSES" SEG_JAX_PROCESS_ID="$i" \
    "$PYTHON" -m seg_jax.train --distributed "$@" >"$LOG_DIR/process_$i.log" 2>&1 &
  pids+=($!)
done
echo "started $NUM_PROCESSES processes (coordinator 127.0.0.1:$PORT); logs in $LOG_DIR (process 0 prints progress)"
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
tail -n 5 "$LOG_DIR/process_0.log"
exit "$status"
