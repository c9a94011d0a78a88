#!/bin/bash
# Issue 46: the teachers' label audit (missed-person ignore maps) of every source the still model trains on that
# leaves people unlabelled, plus DAVIS-2016, into workdirs/label_audit (git-ignored; the run reads it from there).
# Same settings as the audit recorded in results/label_audit/ (people at MODNet short side 384, the rest 256).
# Teachers' virtualenvs in workdirs/venvs (built by seg_jax.peers on first use, ~1 min from PyPI). Resumable:
# rerun the same command.
set -e
cd "$(dirname "$0")/.."
export SEG_JAX_PEER_VENV=$PWD/workdirs/venvs/peer-venv SEG_JAX_MODNET_VENV=$PWD/workdirs/venvs/modnet-venv
PY=${PYTHON:-python}
OUT=workdirs/label_audit
COMMON="--data_root ../shared/data --out $OUT --open_fraction 0.02 --min_area 0.004"
nice -n 10 $PY -m seg_jax.data.label_audit $COMMON --sources people --modnet_short 384
nice -n 10 $PY -m seg_jax.data.label_audit $COMMON --sources davis17,fullbody --modnet_short 256
nice -n 10 $PY -m seg_jax.data.label_audit $COMMON --sources davis --modnet_short 256 --results results/label_audit
