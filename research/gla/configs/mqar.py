"""MQAR associative recall (GLA, Yang et al. 2023, sec. 5; Zoology, Arora et al. 2023): GLA vs
RetNet-style fixed decay vs softmax attention at the same width and depth.

  python -m launch.gla --config=research/gla/configs/mqar.py

Shrunk to length 64, 8 pairs over 16 keys and 16 values (chance 1/16), width 32, 2000 steps.
The easier setting `--config.task_options.seq_len=32 --config.task_options.num_pairs=4
--config.task_options.num_keys=8 --config.task_options.num_values=8` is solved (100%) by all
three models within 2000 steps; see the README.

Hardware: a shared 2-core CPU (load ~10). Run time: about 11 minutes. Measured: GLA 29.9%,
RetNet 25.3%, attention 25.2% (all still on the plateau). Paper (Fig. 2): GLA > RetNet;
attention solves it. With `--config.task_options.num_pairs=4 --config.dim=64` (2 seeds, see
the README): attention 100%, RetNet 65% / 98%, GLA 55% / 43%: GLA > RetNet not reproduced.
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "synthetic"
    c.task = "mqar"
    c.task_options = {"seq_len": 64, "num_pairs": 8, "num_keys": 16, "num_values": 16}
    c.mixers = ("gla", "retnet", "attention")
    c.mixer_kwargs = {
        # The paper's gate temperature, explicit so `--config.mixer_kwargs.gla.gate_temperature`
        # can change it (1 leaves the plateau sooner on the tiny task; see the README).
        "gla": {"num_heads": 2, "method": "chunked", "chunk_size": 16, "gate_temperature": 16.0},
        "retnet": {"num_heads": 2},
        "attention": {"num_heads": 2, "max_len": 256},
    }
    c.dim = 32
    c.depth = 2
    c.batch_size = 32
    c.steps = 2000
    c.learning_rate = 3e-3
    c.eval_batches = 8
    c.seed = 0
    if arg == "smoke":
        c.task_options = {"seq_len": 16, "num_pairs": 2, "num_keys": 4, "num_values": 4}
        c.dim, c.depth, c.batch_size, c.steps, c.eval_batches = 16, 1, 4, 3, 1
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
