#!/bin/bash
# Issue 47: score a cells-only candidate (research.train_cells) as the user runs it, beside the per-frame model and
# the shipped (hand-set) ConvLSTM: at network resolution against its own zero cells (research.eval_cells: DAVIS
# clips streamed from a reset, stills one step from a reset) and through Segmenter.step at full resolution on the
# DAVIS val and test clips (seg_jax.evaluate; peers' DAVIS rows come from the test evaluation with peers).
# Usage: research/issue47_evaluate.sh [WORKDIR [WEIGHTS]]   (default workdirs/convlstm_cells_slow and its weights/,
# the val-selected cells; weights_latest/ for the last step's); writes workdirs/eval/.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RUN=${1:-workdirs/convlstm_cells_slow}
CAND="$RUN/${2:-weights}"
NAME=$(basename "$RUN")_${2:-weights}
OUT=workdirs/eval
mkdir -p "$OUT"
if [ ! -f "$CAND/manifest.json" ]; then echo "issue47_evaluate: $CAND has no weights yet; finish the run first" >&2; exit 2; fi
for split in val test; do
  nice -n 10 $PY -m research.eval_cells --candidate "$CAND" --split $split --out "$OUT/${NAME}_network_$split.json"
  nice -n 10 $PY -m seg_jax.evaluate --model convlstm --checkpoint "$CAND" --split $split --subsets davis \
    --peers none --nofps --data ../shared/data --out "$OUT/${NAME}_segmenter_${split}_davis.json"
  [ -f "$OUT/shipped_segmenter_${split}_davis.json" ] || nice -n 10 $PY -m seg_jax.evaluate --model mobilenet,convlstm \
    --split $split --subsets davis --peers none --nofps --data ../shared/data --out "$OUT/shipped_segmenter_${split}_davis.json"
done
