"""Selective copying (Mamba, Gu & Dao 2023, Table 1): Mamba vs an LTI SSM (S4D) mixer.

  python -m launch.mamba --config=research/mamba/configs/selective_copying.py

Shrunk to 32 positions + 4 copied tokens from a vocabulary of 8 (chance 12.5%).

Hardware: a shared 2-core CPU (load ~16). Run time: about 8 minutes. Expected: Mamba leaves
the plateau near step 150 and passes 90% by step 400; S4D well below (paper: S6 99.8% vs S4
18.3%, at length 4096, 16 tokens). At learning rate 3e-3, batch 32, Mamba is still at chance
after 400 steps.
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "synthetic"
    c.task = "selective_copying"
    c.task_options = {"seq_len": 32, "num_tokens": 4, "vocab": 8}
    c.mixers = ("mamba", "s4d")
    c.mixer_kwargs = {"mamba": {"state_dim": 16}, "s4d": {"state_dim": 16}}
    c.dim = 32
    c.depth = 2
    c.batch_size = 64
    c.steps = 600
    c.learning_rate = 1e-2
    c.eval_batches = 8
    c.seed = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "num_tokens": 2, "vocab": 4}
        c.dim, c.depth, c.batch_size, c.steps, c.eval_batches = 16, 1, 4, 3, 1
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
