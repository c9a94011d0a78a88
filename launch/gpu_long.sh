#!/usr/bin/env bash
# One call of a long GPU run: resume the run carried in $RESUME, train for at most $TRAIN_SECONDS (default 540),
# bring the checkpoint back in $OUT so that the next call (or a CPU run) continues it exactly.
#
# Here, once (ignored folders of the checkout; 64 MiB travel in all):
#   python -m seg_jax.data.downscale --src ../shared/data --dst data_local/gpu384 --max_side 384
# Each device call (carry data_local/gpu384, data_local/resume and .whl):
#   MODEL=mobilenet bash launch/gpu_long.sh
# Back here, after each call (FILES is the folder the call's files came back in):
#   bash launch/gpu_long_collect.sh FILES mobilenet      # -> data_local/resume/ and workdirs/gpu_long_mobilenet
#
# The run is configs/$MODEL.py:gpu-long (device data path, 256x256, batch 128, moving average of the weights)
# in $RUNS/gpu_long_$MODEL; it starts from the shipped weights the first time (the ConvLSTM from the U-Net MobileNet's) and from the carried checkpoint
# after that. $OUT receives $MODEL.ckpt.tar.partNN (the workdir's checkpoints, config and metrics, split into
# 15 MiB parts), $MODEL.weights.tar (the best checkpoint shipped as a weights folder with its training record)
# and $MODEL.log. A CPU run continues it with the same workdir:
#   python -m seg_jax.train --config configs/$MODEL.py:gpu-long --workdir workdirs/gpu_long_$MODEL \
#       --config.data.root=../shared/data --config.max_train_seconds=0
set -uo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-mobilenet}
DATA=${DATA:-data_local/gpu384}
SECONDS_BUDGET=${TRAIN_SECONDS:-540}
RESUME=${RESUME:-data_local/resume}
RUNS=${RUNS:-runs}
OUT=${OUT:-runs/gpu_long_out}
EXTRA=${EXTRA:-}
WORKDIR="$RUNS/gpu_long_$MODEL"
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
say() { echo "gpu_long: $*"; }

case "$MODEL" in mobilenet|convlstm|unet) ;; *) say "MODEL=$MODEL is not a model; use mobilenet, convlstm or unet"; exit 2;; esac
if [ ! -d "$DATA/portraits/images" ] || [ ! -d "$DATA/backgrounds" ]; then
  say "no packed data at $DATA (portraits/images, backgrounds...); make it here with 'python -m seg_jax.data.downscale --src ../shared/data --dst $DATA --max_side 384' and name $DATA in the call's carry"
  exit 2
fi
mkdir -p "$OUT" "$RUNS" || { say "cannot create $OUT or $RUNS"; exit 2; }
# shellcheck source=launch/carried_wheels.sh
source launch/carried_wheels.sh
use_carried_wheels "grain, ml_collections" || { say "could not install the carried wheels in .whl/"; exit 2; }

if compgen -G "$RESUME/$MODEL.ckpt.tar.part*" >/dev/null && [ ! -d "$WORKDIR/checkpoints/latest" ]; then
  mkdir -p "$WORKDIR"
  cat "$RESUME/$MODEL.ckpt.tar.part"* | tar -x -C "$WORKDIR" \
    || { say "the carried checkpoint $RESUME/$MODEL.ckpt.tar.part* does not unpack; collect the last call's files again"; exit 2; }
  say "resuming the carried run ($(ls "$WORKDIR/checkpoints/latest"))"
fi

# shellcheck disable=SC2086
timeout -s TERM $(( SECONDS_BUDGET + 150 )) python3 -m seg_jax.train --config "configs/$MODEL.py:gpu-long" \
    --workdir "$WORKDIR" --config.data.root="$DATA" --config.max_train_seconds="$SECONDS_BUDGET" --noprogress \
    $EXTRA 2>&1 | tee "$OUT/$MODEL.log"
rc=${PIPESTATUS[0]}
say "train exit $rc"
if [ ! -d "$WORKDIR/checkpoints/latest" ]; then say "no checkpoint was written; nothing to bring back"; exit 1; fi

# the resumable state: the latest checkpoint always, the best one where it fits (the ConvLSTM's is in the weights)
parts=(checkpoints/latest config.json metrics.jsonl)
[ "$MODEL" = mobilenet ] && [ -d "$WORKDIR/checkpoints/best" ] && parts+=(checkpoints/best)
rm -f "$OUT/$MODEL.ckpt.tar.part"*
tar -cf - -C "$WORKDIR" "${parts[@]}" | split -b 15m -d - "$OUT/$MODEL.ckpt.tar.part" \
  || { say "could not pack the checkpoint"; exit 1; }
ship_dir="$RUNS/gpu_long_ship_$MODEL"
rm -rf "$ship_dir"; mkdir -p "$ship_dir/weights" "$ship_dir/training"
python3 -m seg_jax.artifacts.ship --workdir "$WORKDIR" --model "$MODEL" --input_size 256x256 --out "$ship_dir/weights" \
    --results_dir "$ship_dir/training" --record_name "${MODEL}_gpu_long" \
    --command "MODEL=$MODEL launch/gpu_long.sh (configs/$MODEL.py:gpu-long, max_train_seconds=$SECONDS_BUDGET $EXTRA)" \
  && tar -cf "$OUT/$MODEL.weights.tar" -C "$ship_dir" . \
  || say "could not ship the best checkpoint (the checkpoint parts are in $OUT)"
ls -la "$OUT"
exit "$rc"
