"""LMUFormer, its spiking twin and a Transformer on permuted sequential sklearn digits
(64-step sequences, 1257 train / 360 test; the offline stand-in for psMNIST).

Commands (one model through the shared loop; the three models as a study, 7.5 min wall on a
2-core CPU loaded by other jobs):
    python -m launch.train --config=research/lmuformer/configs/psdigits.py --workdir=/tmp/lmu
    python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py --workdir=/tmp/s
    python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py:smoke --workdir=...
Recipe: 20 epochs of batch 64 in fresh permutations (380 steps), AdamW (lr 3e-3, weight decay
0.05), warmup-cosine with `num_steps // 10 + 1` warmup steps, no clipping.
Hardware: CPU. Expected: LMUFormer test accuracy ~0.9, the spiking twin a little lower
(see README for the measured numbers).
"""

import ml_collections

from lib.train.config import base_config, parse_arg, steps_from_epochs

DIGITS_TRAIN = 1257  # sklearn digits' training split (lib.data.images.sklearn_digits_splits)


def get_config(arg: str | None = None):
    """`arg`: None (full run) or "smoke" (tiny model, 6 epochs of batch 32 at lr 1e-2: learns in
    seconds; measured 0.63, the spiking twin 0.41; tests/research/test_lmuformer.py asserts the
    twin is > 0.25)."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "lmuformer"
    c.model.name = "lmuformer"  # or "spiking_lmuformer", "transformer"
    c.model.dim, c.model.depth, c.model.num_heads = 32, 1, 4
    c.model.order, c.model.theta = 16, 64.0  # the LMU memory
    c.model.beta, c.model.threshold = 0.5, 1.0  # the spiking twin's LIF neurons
    c.data.name = "psdigits"  # or a prepared lib.data sequence set
    c.data.perm_seed = 0  # psdigits' pixel permutation
    c.data.data_dir = ""  # "": $BRAINSEQ_DATA_DIR or ~/.cache/brainseq/data
    c.data.train_examples, c.data.test_examples = DIGITS_TRAIN, 0  # first n; test 0: all
    c.data.epochs, c.data.batch_size, c.data.eval_batch_size = 20, 64, 1024
    c.optimizer.learning_rate, c.optimizer.weight_decay = 3e-3, 0.05
    c.optimizer.grad_clip_norm = 0.0
    steps_from_epochs(c)  # num_steps = epochs x full batches; warmup num_steps // 10 + 1
    c.train.log_every = 20
    c.train.eval_every = 0
    c.train.checkpoint_every = 0  # only at the end (and on SIGTERM)
    # Studies (launch/lmuformer.py): every model in `models`, at every width in `dims` (a
    # parameters-vs-accuracy sweep) or at `model.dim` when `dims` is empty; at every seed of
    # `seeds` (empty: `config.seed`).
    c.study = ml_collections.ConfigDict(
        {"models": ("lmuformer", "spiking_lmuformer", "transformer"), "dims": (), "seeds": ()}
    )
    if smoke:
        c.model.dim, c.model.order = 16, 8
        c.data.epochs, c.data.batch_size, c.optimizer.learning_rate = 6, 32, 1e-2
    return c
