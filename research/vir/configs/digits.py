"""ViR vs ViT on sklearn's 8x8 digits (1257 train / 360 test images, 16 patches of 2x2).

Commands (one model through the shared loop; both models as a study, ~1-2 min on a CPU):
    python -m launch.train --config=research/vir/configs/digits.py --workdir=/tmp/vir_digits
    python -m launch.vir --config=research/vir/configs/digits.py --workdir=/tmp/vir_study
    python -m launch.vir --config=research/vir/configs/digits.py:smoke --workdir=/tmp/vir_smoke
Recipe: `data.epochs` epochs of batch `data.batch_size` over the training set in fresh
permutations (`train.num_steps` follows: 20 x 19 = 380 steps), AdamW (lr 3e-3, weight decay
0.05) with a warmup-cosine schedule (warmup `num_steps // 10 + 1` steps), no clipping.
Hardware: CPU. Expected: ViR test accuracy ~0.95, ViT ~0.91 (see README); the smoke run (117
steps of a tiny ViR, seconds) reaches ~0.65 (tests/research/test_vir.py asserts > 0.4).
"""

import ml_collections

from lib.train.config import base_config, parse_arg, steps_from_epochs

DIGITS_TRAIN = 1257  # sklearn digits' training split (lib.data.images.sklearn_digits_splits)


def get_config(arg: str | None = None):
    """`arg`: None (full run) or "smoke" (3 epochs of batch 32, tiny model: learns, in seconds)."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "vir"
    c.model.name = "vir"  # or "vit"
    c.model.method = "parallel"  # retention's full-sequence form
    c.model.dim, c.model.depth, c.model.num_heads, c.model.patch = 64, 2, 4, 2
    c.model.image_size = 8
    c.data.name = "digits"
    c.data.data_dir = ""
    c.data.train_examples, c.data.test_examples = DIGITS_TRAIN, 0  # first n; test 0: all
    c.data.epochs, c.data.batch_size, c.data.eval_batch_size = 20, 64, 1024
    c.optimizer.learning_rate, c.optimizer.weight_decay = 3e-3, 0.05
    c.optimizer.grad_clip_norm = 0.0
    steps_from_epochs(c)  # num_steps = epochs x full batches; warmup num_steps // 10 + 1
    c.train.log_every = 20
    c.train.eval_every = 0
    c.train.checkpoint_every = 0  # only at the end (and on SIGTERM)
    # Studies (launch/vir.py): the models trained, or (ViR dim, ViT dim) pairs of about equal
    # parameter count (`matched_dims`, set by configs/mnist.py:matched), at `seeds` (empty:
    # `config.seed`). `memory`: measure memory and time vs image size instead (memory.py).
    c.study = ml_collections.ConfigDict(
        {"models": ("vir", "vit"), "matched_dims": (), "seeds": (), "memory": False}
    )
    if smoke:
        c.model.dim, c.model.depth, c.model.num_heads = 16, 1, 2
        c.data.epochs, c.data.batch_size = 3, 32
    return c
