#!/usr/bin/env bash
# After a launch/gpu_long.sh call: put its checkpoint where the next call carries it from and where a CPU run
# resumes it, and unpack the shipped weights beside it.
#   bash launch/gpu_long_collect.sh FILES MODEL     # FILES: the folder the call's $OUT came back in
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${1:?"usage: launch/gpu_long_collect.sh FILES MODEL (FILES: the folder the device call's files came back in)"}
MODEL=${2:-mobilenet}
RESUME=${RESUME:-data_local/resume}
WORKDIR=${WORKDIR:-workdirs/gpu_long_$MODEL}
compgen -G "$FILES/$MODEL.ckpt.tar.part*" >/dev/null \
  || { echo "gpu_long_collect: no $MODEL.ckpt.tar.part* in $FILES; was the call for MODEL=$MODEL, and did it write a checkpoint?"; exit 2; }
mkdir -p "$RESUME"
rm -f "$RESUME/$MODEL.ckpt.tar.part"*
cp "$FILES/$MODEL.ckpt.tar.part"* "$RESUME/"
cat "$RESUME/$MODEL.ckpt.tar.part"* | tar -t >/dev/null \
  || { echo "gpu_long_collect: the parts in $FILES do not make a whole tar; fetch the call's files again"; exit 2; }
if [ -d "$WORKDIR/checkpoints" ]; then mv "$WORKDIR" "$WORKDIR.previous.$(date +%s)"; fi
mkdir -p "$WORKDIR"
cat "$RESUME/$MODEL.ckpt.tar.part"* | tar -x -C "$WORKDIR"
if [ -f "$FILES/$MODEL.weights.tar" ]; then mkdir -p "$WORKDIR/shipped" && tar -xf "$FILES/$MODEL.weights.tar" -C "$WORKDIR/shipped"; fi
echo "gpu_long_collect: $RESUME/ carries step $(ls "$WORKDIR/checkpoints/latest") to the next call; $WORKDIR resumes it here"
