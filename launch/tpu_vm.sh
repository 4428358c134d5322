#!/usr/bin/env bash
# Multi-host training on a Cloud TPU VM slice (e.g. v4-32): the same command on every worker.
#
#   bash launch/tpu_vm.sh my-tpu us-central2-b \
#       research/baselines/configs/shakespeare.py:transformer gs://my-bucket/runs/shk
#
# Every worker runs launch/train.py; `jax.distributed.initialize()` (called by
# lib.train.sharding.maybe_initialize_distributed when TPU_WORKER_HOSTNAMES lists several
# workers) discovers the others through the TPU metadata. WORKDIR must be visible to all workers
# (a gs:// bucket works with orbax). Each worker reads its own slice of the data from its local
# BRAINSEQ_DATA_DIR, which must be prepared on every worker first (the setup step below).
set -euo pipefail
TPU_NAME="${1:?usage: launch/tpu_vm.sh TPU_NAME ZONE CONFIG[:ARG] WORKDIR [--config.x=y ...]}"
ZONE="${2:?zone}"
CONFIG="${3:?config}"
WORKDIR="${4:?workdir visible to every worker}"
shift 4
REPO_DIR="${REPO_DIR:-brainseq}"  # where the repository is checked out on each worker
EXTRA=$(printf ' %q' "$@")

# One-time setup on every worker (uncomment on first use):
# gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
#   "cd $REPO_DIR && pip install -e '.[test]' 'jax[tpu]' && python3 -m lib.data prepare shakespeare_char"

gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone "$ZONE" --worker=all --command \
  "cd $REPO_DIR && python3 -m launch.train --config=$CONFIG --workdir=$WORKDIR$EXTRA"
