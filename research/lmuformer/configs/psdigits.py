"""LMUFormer, its spiking twin and a Transformer on permuted sequential sklearn digits
(64-step sequences, 1257 train / 360 test; the offline stand-in for psMNIST).

Command (full small-scale run, three models; 7.5 min wall on a 2-core CPU loaded by other jobs):
    python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py
    python -m launch.lmuformer --config=research/lmuformer/configs/psdigits.py:smoke
Hardware: CPU. Expected: LMUFormer test accuracy ~0.9, the spiking twin a little lower
(see README for the measured numbers).
"""

import ml_collections


def get_config(arg: str | None = None):
    """`arg`: None (full run) or "smoke" (tiny model, 6 epochs of batch 32 at lr 1e-2: learns in
    seconds; measured 0.63, the spiking twin 0.41; tests/research/test_lmuformer.py asserts the
    twin is > 0.25)."""
    c = ml_collections.ConfigDict()
    c.experiment = "compare"
    c.models = ("lmuformer", "spiking_lmuformer", "transformer")
    c.model = "lmuformer"
    c.dim, c.depth, c.num_heads, c.order, c.theta = 32, 1, 4, 16, 64.0
    c.beta, c.threshold = 0.5, 1.0  # the spiking twin's LIF neurons
    c.epochs, c.batch_size, c.lr, c.weight_decay = 20, 64, 3e-3, 0.05
    c.seed, c.perm_seed = 0, 0
    if arg == "smoke":
        c.dim, c.order, c.epochs, c.batch_size, c.lr = 16, 8, 6, 32, 1e-2
    elif arg not in (None, ""):
        raise ValueError(f"unknown config arg {arg!r}; expected None or 'smoke'")
    return c
