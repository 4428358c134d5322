#!/usr/bin/env bash
# The main job (README's first command): install, prepare character-level Shakespeare, train
# the baseline GRU language model on the CPU (about 3.5 CPU-minutes), print the
# test loss in bits per character and write samples, checkpoints and curves to $WORKDIR.
# Extra arguments go to launch/train.py, e.g. `bash scripts/main.sh --config.train.num_steps=200`.
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR="${WORKDIR:-workdirs/shakespeare_gru}"
python3 -m pip install -q --root-user-action=ignore -e .
export JAX_PLATFORMS="${JAX_PLATFORMS:-cpu}"
python3 -m lib.data prepare shakespeare_char
python3 -m launch.train \
  --config=research/baselines/configs/shakespeare.py:gru \
  --workdir="$WORKDIR" "$@"
echo "outputs in $WORKDIR: metrics.jsonl, curves.png, samples.txt, checkpoints/, tensorboard/"
