"""MQAR associative recall (GLA, Yang et al. 2023, sec. 5; Zoology, Arora et al. 2023): GLA vs
RetNet-style fixed decay vs softmax attention at the same width and depth.

  python -m launch.gla --config=research/gla/configs/mqar.py

Hardware: a shared 2-core CPU (load ~12). Run time: about 6 minutes. Expected: attention and
GLA recall well above RetNet's fixed decay (paper, Fig. 2: GLA > RetNet; attention solves it).
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "synthetic"
    c.task = "mqar"
    c.task_options = {"seq_len": 64, "num_pairs": 8, "num_keys": 32, "num_values": 32}
    c.mixers = ["gla", "retnet", "attention"]
    c.mixer_kwargs = {
        "gla": {"num_heads": 2},
        "retnet": {"num_heads": 2},
        "attention": {"num_heads": 2, "max_len": 256},
    }
    c.dim = 64
    c.depth = 2
    c.batch_size = 32
    c.steps = 400
    c.learning_rate = 3e-3
    c.eval_batches = 8
    c.seed = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "num_pairs": 2, "num_keys": 4, "num_values": 4}
        c.dim, c.depth, c.batch_size, c.steps, c.eval_batches = 16, 1, 4, 3, 1
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
