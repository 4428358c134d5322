"""Selective copying (Mamba, Gu & Dao 2023, Table 1): Mamba vs an LTI SSM (S4D) mixer.

  python -m launch.mamba --config=research/mamba/configs/selective_copying.py

Hardware: a shared 2-core CPU (load ~12). Run time: about 6 minutes. Expected: Mamba well
above S4D on the copied tokens (paper: S6 99.8% vs S4 18.3%, at length 4096, 16 tokens).
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "synthetic"
    c.task = "selective_copying"
    c.task_options = {"seq_len": 64, "num_tokens": 8, "vocab": 8}
    c.mixers = ["mamba", "s4d"]
    c.mixer_kwargs = {"mamba": {"state_dim": 16}, "s4d": {"state_dim": 16}}
    c.dim = 32
    c.depth = 2
    c.batch_size = 32
    c.steps = 400
    c.learning_rate = 3e-3
    c.eval_batches = 8
    c.seed = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "num_tokens": 2, "vocab": 4}
        c.dim, c.depth, c.batch_size, c.steps, c.eval_batches = 16, 1, 4, 3, 1
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
