"""Induction heads with length extrapolation (Mamba, Gu & Dao 2023, Table 2), shrunk: train at
length 32 (vocab 8), test at 32 to 8192 (the paper trains at 256 and tests to 1M).

  python -m launch.mamba --config=research/mamba/configs/induction_heads.py

Hardware: a shared 2-core CPU (load ~15). Run time: about 6 minutes. Expected: Mamba leaves
the chance plateau near step 150 and is near 100% at every test length (paper: 100% up to 1M).
The learning rate matters: at 3e-3 and batch 32 it is still at chance after 400 steps.
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "induction"
    c.task_options = {"seq_len": 32, "vocab": 8}
    c.mixers = ("mamba",)
    c.mixer_kwargs = {"mamba": {"state_dim": 16}}
    c.dim = 32
    c.depth = 2
    c.batch_size = 64
    c.steps = 400
    c.learning_rate = 1e-2
    c.test_lengths = (32, 128, 512, 2048, 8192)
    c.eval_tokens = 16384  # tokens per evaluation batch (batch = eval_tokens // length)
    c.eval_examples = 128
    c.seed = 0
    # A curriculum: first `curriculum_steps` at length `curriculum_len` (0: none), then `steps`
    # at `task_options.seq_len` from there (e.g. 32 then 256; see the README).
    c.curriculum_len = 0
    c.curriculum_steps = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "vocab": 4}
        c.dim, c.depth, c.batch_size, c.steps = 16, 1, 4, 3
        c.test_lengths, c.eval_tokens, c.eval_examples = (16, 64), 128, 4
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
