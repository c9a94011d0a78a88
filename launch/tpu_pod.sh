#!/usr/bin/env bash
# Cloud TPU VM pod: run the same command on every worker of the pod (one process per host).
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b launch/tpu_pod.sh --config configs/unet.py --workdir gs://my-bucket/runs/unet
#
# jax.distributed.initialize() discovers the pod topology by itself on TPU VMs. The workdir must be visible to all
# workers (a gs:// bucket: Orbax writes to it directly; TensorBoard logs come from worker 0 only).
# Needs the repository checked out at REPO_DIR with seg_jax installed on every worker, e.g. once with
#   gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command="git clone ... && pip install -e seg_jax 'jax[tpu]'"
# Spot/preemptible pods send SIGTERM before reclaiming: every worker checkpoints and exits; rerun this script.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}"
REPO_DIR="${REPO_DIR:-~/seg_jax}"
PROJECT_FLAG=()
if [[ -n "${PROJECT:-}" ]]; then PROJECT_FLAG=(--project "$PROJECT"); fi
ARGS=$(printf ' %q' "$@")
gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" "${PROJECT_FLAG[@]}" --worker=all \
  --command="cd $REPO_DIR && python -m seg_jax.train --distributed --noprogress$ARGS"
