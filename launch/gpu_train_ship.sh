#!/usr/bin/env bash
# Train both shipped models on ONE GPU inside a fixed time, ship their weights, and run the GPU benchmark.
#
#   DATA=data_local/gpu384 OUT=runs/gpu_round launch/gpu_train_ship.sh
#
# Stages (each bounded in time; a failed stage does not stop the next ones, and everything it made is kept):
#   1. U-Net MobileNet, configs/mobilenet.py:gpu, warm-started from the shipped weights (seg_jax/weights/mobilenet),
#      for MOBILENET_SECONDS of training -> $OUT/mobilenet.tar (weights folder + metrics.jsonl + config + log)
#   2. U-Net MobileNet & ConvLSTM, configs/convlstm.py:gpu, initialised from stage 1 (else the shipped mobilenet),
#      for CONVLSTM_SECONDS -> $OUT/convlstm.tar
#   3. python -m seg_jax.bench --suite gpu (mobilenet, convlstm) for at most BENCH_SECONDS -> $OUT/bench-gpu.json
# DATA is the real data root (a copy made by `python -m seg_jax.data.downscale` travels well: ~32 MB at 384 px).
# Python packages the machine lacks can be carried as wheels in .whl/ (installed into /tmp/site first).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_round}
DATA=${DATA:-data_local/gpu384}
MOBILENET_SECONDS=${MOBILENET_SECONDS:-200}
CONVLSTM_SECONDS=${CONVLSTM_SECONDS:-150}
BENCH_SECONDS=${BENCH_SECONDS:-80}
WORKERS=${WORKERS:-$(( $(nproc) > 4 ? $(nproc) - 3 : 0 ))}
RUNS=${RUNS:-runs}
EXTRA_MOBILENET=${EXTRA_MOBILENET:-}
EXTRA_CONVLSTM=${EXTRA_CONVLSTM:-}
mkdir -p "$OUT" "$RUNS"
LOG="$OUT/gpu_round.log"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
say() { echo "[$(date +%H:%M:%S)] $*" | tee -a "$LOG"; }

# shellcheck source=launch/carried_wheels.sh
source launch/carried_wheels.sh
use_carried_wheels "grain, ml_collections, tensorboardX" || { say "could not install the carried wheels in .whl/"; exit 1; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1; nproc;
  python3 -c "import jax, flax, optax, orbax.checkpoint, grain; print('jax', jax.__version__, jax.devices(), 'flax', flax.__version__, 'optax', optax.__version__)" 2>&1; } | tee -a "$LOG"

# train NAME CONFIG SECONDS INIT_FROM EXTRA_ARGS: train, ship the best checkpoint, pack the results
train() {
  local name=$1 config=$2 seconds=$3 init=$4 extra=$5 workdir="$RUNS/gpu_$1" t0=$SECONDS
  say "stage $name: $config for ${seconds}s, init_from=$init, workers=$WORKERS"
  # shellcheck disable=SC2086
  timeout -s TERM $(( seconds + 180 )) python3 -m seg_jax.train --config "$config" --workdir "$workdir" \
      --config.data.root="$DATA" --config.init_from="$init" --config.max_train_seconds="$seconds" \
      --config.data.num_workers="$WORKERS" --noprogress $extra 2>&1 | grep -v "leaked shared_memory" | tee "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ] && [ "$WORKERS" -gt 0 ] && [ $(( SECONDS - t0 )) -lt 90 ] && ! ls "$workdir"/checkpoints/latest/* >/dev/null 2>&1; then
    say "stage $name failed early (rc=$rc) with $WORKERS loader workers; retrying in-process with 16 reader threads"
    rm -rf "$workdir"
    # shellcheck disable=SC2086
    timeout -s TERM $(( seconds + 120 )) python3 -m seg_jax.train --config "$config" --workdir "$workdir" \
        --config.data.root="$DATA" --config.init_from="$init" --config.max_train_seconds="$seconds" \
        --config.data.num_workers=0 --config.data.read_threads=16 --noprogress $extra 2>&1 | tee -a "$OUT/$name.log"
    rc=${PIPESTATUS[0]}
  fi
  say "stage $name: train exit $rc after $(( SECONDS - t0 ))s"
  local ship_dir="$RUNS/ship_$name"
  rm -rf "$ship_dir"; mkdir -p "$ship_dir/weights" "$ship_dir/training"
  python3 -m seg_jax.artifacts.ship --workdir "$workdir" --model "$name" --input_size 256x256 --out "$ship_dir/weights" \
      --results_dir "$ship_dir/training" \
      --command "launch/gpu_train_ship.sh (stage $name: $config, init_from=$init, max_train_seconds=$seconds $extra)" \
      2>&1 | tee -a "$LOG"
  cp "$workdir"/metrics.jsonl "$workdir"/config.json "$OUT/$name.log" "$ship_dir/" 2>/dev/null
  tar -cf "$OUT/$name.tar" -C "$ship_dir" . && say "stage $name: packed $OUT/$name.tar ($(du -h "$OUT/$name.tar" | cut -f1))"
}

train mobilenet configs/mobilenet.py:gpu "$MOBILENET_SECONDS" seg_jax/weights/mobilenet "$EXTRA_MOBILENET"
INIT_CONVLSTM="$RUNS/ship_mobilenet/weights"
[ -f "$INIT_CONVLSTM/variables.msgpack" ] || INIT_CONVLSTM=seg_jax/weights/mobilenet
train convlstm configs/convlstm.py:gpu "$CONVLSTM_SECONDS" "$INIT_CONVLSTM" "$EXTRA_CONVLSTM"

if [ "$BENCH_SECONDS" -gt 0 ]; then
  say "stage bench: at most ${BENCH_SECONDS}s"
  XLA_PYTHON_CLIENT_MEM_FRACTION=0.5 timeout -s TERM "$BENCH_SECONDS" python3 -m seg_jax.bench --suite gpu --out "$OUT/bench-gpu.json" \
      --models mobilenet,convlstm --iters 200 --e2e-iters 100 --train-iters 10 --throughput-iters 20 \
      --sections latency,e2e,throughput,train,peers 2>&1 | tail -40 | tee -a "$LOG"
  say "stage bench: exit ${PIPESTATUS[0]}"
fi
say "done"
