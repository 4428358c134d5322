"""Induction heads with length extrapolation (Mamba, Gu & Dao 2023, Table 2), shrunk: train at
length 64, test at 64 to 4096 (the paper trains at 256 and tests to 1M).

  python -m launch.mamba --config=research/mamba/configs/induction_heads.py

Hardware: a shared 2-core CPU (load ~12). Run time: about 4 minutes. Expected: Mamba near
100% at every test length (paper: 100% up to 1M tokens).
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "induction"
    c.task_options = {"seq_len": 64, "vocab": 16}
    c.mixers = ["mamba"]
    c.mixer_kwargs = {"mamba": {"state_dim": 16}}
    c.dim = 32
    c.depth = 2
    c.batch_size = 32
    c.steps = 400
    c.learning_rate = 3e-3
    c.test_lengths = [64, 256, 1024, 4096]
    c.eval_tokens = 16384  # tokens per evaluation batch (batch = eval_tokens // length)
    c.eval_examples = 256
    c.seed = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "vocab": 4}
        c.dim, c.depth, c.batch_size, c.steps = 16, 1, 4, 3
        c.test_lengths, c.eval_tokens, c.eval_examples = [16, 64], 128, 4
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
