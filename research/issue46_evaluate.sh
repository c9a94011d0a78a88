#!/bin/bash
# Issue 46, after research/issue46_retrain.sh stops: ship its best checkpoint as a candidate weights folder in
# workdirs/ (never over seg_jax/weights/), blend it with the shipped weights as the previous round did
# (seg_jax.convert.average_weights; the shipped folder repeated N-1 times = 1/N of the run), and score each on the
# val split at full resolution and resized (no peers, no fps) into results/ship-rule/issue46-evals/mobilenet-issue46-*.json|md.
# Usage: research/issue46_evaluate.sh [ship|blend|eval NAME...]; with no argument all three, blends 1:1, 1:3, 1:7.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RUN=${WORKDIR:-workdirs/mobilenet_issue46}
CAND=workdirs/mobilenet_issue46_best
SHIPPED=seg_jax/weights/mobilenet
step=${1:-all}; shift || true
if [ "$step" = ship ] || [ "$step" = all ]; then
  $PY -m seg_jax.artifacts.ship --workdir "$RUN" --model mobilenet --input_size 256x256 --out "$CAND" \
    --results_dir results/training --record_name mobilenet_issue46 --command "research/issue46_retrain.sh"
fi
if [ "$step" = blend ] || [ "$step" = all ]; then
  $PY -m seg_jax.convert.average_weights --model mobilenet --out workdirs/mobilenet_issue46_blend50 $SHIPPED "$CAND"
  $PY -m seg_jax.convert.average_weights --model mobilenet --out workdirs/mobilenet_issue46_blend25 \
    $SHIPPED $SHIPPED $SHIPPED "$CAND"
  $PY -m seg_jax.convert.average_weights --model mobilenet --out workdirs/mobilenet_issue46_blend12 \
    $SHIPPED $SHIPPED $SHIPPED $SHIPPED $SHIPPED $SHIPPED $SHIPPED "$CAND"
  # latest25: a quarter of the run's last checkpoint (step 130), shipped first with
  # python -m seg_jax.artifacts.ship --workdir $RUN/checkpoints/latest ... --out workdirs/mobilenet_issue46_latest
  if [ -d workdirs/mobilenet_issue46_latest ]; then
    $PY -m seg_jax.convert.average_weights --model mobilenet --out workdirs/mobilenet_issue46_latest25 \
      $SHIPPED $SHIPPED $SHIPPED workdirs/mobilenet_issue46_latest
  fi
fi
if [ "$step" = eval ] || [ "$step" = all ]; then
  names=${*:-best blend50 blend25 blend12}
  for name in $names; do
    nice -n 10 $PY -m seg_jax.evaluate --model mobilenet --checkpoint "workdirs/mobilenet_issue46_$name" \
      --split val --peers none --nofps --out "results/ship-rule/issue46-evals/mobilenet-issue46-$name.json"
  done
fi
