#!/usr/bin/env bash
# Multi-host GPU training on a SLURM cluster: one process per node, each seeing its node's GPUs.
#
#   sbatch launch/slurm_gpu.sh research/baselines/configs/shakespeare.py:transformer /shared/runs/shk
#
# srun starts the same command on every node. Each process calls
# `jax.distributed.initialize()` (lib.train.sharding.maybe_initialize_distributed), which reads
# the coordinator address, process count and process id from SLURM's environment. The mesh then
# spans all GPUs of all nodes; each process reads its own slice of the data (lib.data.load
# shards by jax.process_index()), and checkpoints go to the shared WORKDIR. Requeued or
# preempted jobs get SIGTERM, save a checkpoint and resume when started again.
#
#SBATCH --job-name=brainseq
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --time=04:00:00
#SBATCH --signal=TERM@120
#SBATCH --requeue
set -euo pipefail
CONFIG="${1:?usage: sbatch launch/slurm_gpu.sh CONFIG[:ARG] WORKDIR [--config.x=y ...]}"
WORKDIR="${2:?a WORKDIR on a file system every node sees}"
shift 2
# Install once on the shared file system beforehand: pip install -e ".[test]" "jax[cuda12]"
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.9}"
srun --kill-on-bad-exit=1 python3 -m launch.train \
  --config="$CONFIG" --workdir="$WORKDIR" "$@"
