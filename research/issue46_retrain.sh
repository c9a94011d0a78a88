#!/bin/bash
# Issue 46: retrain the shipped U-Net MobileNet with the label policy (the teachers' missed-person ignore maps of
# the sources in $AUDITED, default people, fullbody and DAVIS-2017: research/issue46_label_audit.sh), CamVid's train
# sequences and the person-free negatives together, from the shipped weights at 256x256 (the :cpu-long recipe).
# Two runs are recorded (results/training/mobilenet_issue46*.md):
#   first  (RUN=short): 130 steps, lr 3e-4, CamVid 0.1, negatives 0.15, selection by the per-source mean val loss;
#   second (RUN=long):  1300 steps, lr 2e-4, CamVid 0.3, negatives 0.1, selection also counting the pooled person
#                       recall of people, DAVIS and CamVid val (config.val_person_recall); stopped after its
#                       step-260 val (recall 0.305 -> 0.114);
#   third  (RUN=recall): the second's data and selection with the loss BCE + Dice per image with a person
#                       (config.loss=bce_image_dice), so a street frame's pedestrians weigh as much as a selfie,
#                       lr 1e-4, 1000 steps; stopped after its step-200 val (recall 0.305 -> 0.182);
#   fourth (RUN=people): the third without images that hold no person (data.weights.negative=0,
#                       data.negatives.no_person_prob=0): the label policy and CamVid alone, 600 steps; stopped
#                       after its step-150 val (recall 0.305 -> 0.206);
#   fifth  (RUN=policy): the fourth without CamVid: the label policy alone, 300 steps;
#   sixth  (RUN=frozenbn): the third (policy, CamVid, negatives, Dice per image) with BatchNorm on the shipped
#                       running statistics (config.freeze_batch_stats): the shipped weights are a blend whose
#                       statistics training would re-estimate within ~100 steps; 600 steps;
#   seventh (RUN=policyneg): the label policy and the negatives without CamVid (the fifth plus the person-free
#                       images of the third), 300 steps.
# Time budget: the run stops (evaluates, checkpoints) at $DEADLINE (UTC); rerun the same command to resume.
set -e
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
RUN=${RUN:-long}
DEADLINE=${DEADLINE:-$(date -u -d '+100 min' +%H:%M)}
SECONDS_LEFT=$(( $(date -u -d "$DEADLINE" +%s) - $(date -u +%s) ))
if [ "$SECONDS_LEFT" -lt 300 ]; then echo "issue46_retrain: less than 5 minutes to $DEADLINE UTC; set DEADLINE" >&2; exit 2; fi
case "$RUN" in
  short) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46}
         ARGS="--config.num_steps=130 --config.warmup_steps=15 --config.lr_boundaries=90,115 --config.eval_every=65
               --config.data.weights.camvid=0.1 --config.eval_at_start=false" ;;
  long)  WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_long}
         ARGS="--config.num_steps=1300 --config.warmup_steps=50 --config.lr_boundaries=900,1150
               --config.learning_rate=2e-4 --config.eval_every=260 --config.data.weights.camvid=0.3
               --config.data.weights.negative=0.1 --config.val_person_recall=true --config.eval_at_start=true" ;;
  recall) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_recall}
         ARGS="--config.num_steps=1000 --config.warmup_steps=50 --config.lr_boundaries=700,900
               --config.learning_rate=1e-4 --config.eval_every=200 --config.data.weights.camvid=0.3
               --config.data.weights.negative=0.1 --config.val_person_recall=true --config.eval_at_start=true
               --config.loss=bce_image_dice" ;;
  people) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_people}
         ARGS="--config.num_steps=600 --config.warmup_steps=30 --config.lr_boundaries=420,540
               --config.learning_rate=1e-4 --config.eval_every=150 --config.data.weights.camvid=0.3
               --config.data.weights.negative=0 --config.data.negatives.no_person_prob=0
               --config.val_person_recall=true --config.eval_at_start=true --config.loss=bce_image_dice" ;;
  policy) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_policy}
         ARGS="--config.num_steps=300 --config.warmup_steps=30 --config.lr_boundaries=210,270
               --config.learning_rate=1e-4 --config.eval_every=150 --config.data.weights.camvid=0
               --config.data.weights.negative=0 --config.data.negatives.no_person_prob=0
               --config.val_person_recall=true --config.eval_at_start=true --config.loss=bce_image_dice" ;;
  frozenbn) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_frozenbn}
         ARGS="--config.num_steps=600 --config.warmup_steps=30 --config.lr_boundaries=420,540
               --config.learning_rate=1e-4 --config.eval_every=150 --config.data.weights.camvid=0.3
               --config.data.weights.negative=0.1 --config.freeze_batch_stats=true
               --config.val_person_recall=true --config.eval_at_start=true --config.loss=bce_image_dice" ;;
  policyneg) WORKDIR=${WORKDIR:-workdirs/mobilenet_issue46_policyneg}
         ARGS="--config.num_steps=300 --config.warmup_steps=30 --config.lr_boundaries=210,270
               --config.learning_rate=1e-4 --config.eval_every=150 --config.data.weights.camvid=0
               --config.data.weights.negative=0.1
               --config.val_person_recall=true --config.eval_at_start=true --config.loss=bce_image_dice" ;;
  *) echo "issue46_retrain: RUN must be short, long, recall, people, policy, frozenbn or policyneg, not '$RUN'" >&2
     exit 2 ;;
esac
exec nice -n 10 $PY -m seg_jax.train --config configs/mobilenet.py:cpu-long \
  --config.data.root=../shared/data --config.data.image_size=256,256 \
  --config.data.label_audit.dir=workdirs/label_audit --config.data.label_audit.sources=${AUDITED:-people,fullbody,davis17} \
  --config.data.label_audit.directions=missed_person --config.checkpoint_every=50 \
  $ARGS --config.max_train_seconds=$SECONDS_LEFT --workdir "$WORKDIR"
