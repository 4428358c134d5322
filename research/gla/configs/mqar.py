"""MQAR associative recall (GLA, Yang et al. 2023, sec. 5; Zoology, Arora et al. 2023): GLA vs
RetNet-style fixed decay vs softmax attention at the same width and depth.

  python -m launch.gla --config=research/gla/configs/mqar.py --workdir=DIR

Shrunk to length 64, 8 pairs over 16 keys and 16 values (chance 1/16), width 32, 2 layers,
2000 steps x 32, lr 3e-3 (recipe in configs/__init__.py). The easier setting
`--config.data.options.seq_len=32 --config.data.options.num_pairs=4
--config.data.options.num_keys=8 --config.data.options.num_values=8` is solved (100%) by all
three models within 2000 steps; see the README.

Hardware: a shared 2-core CPU (load ~10). Run time: about 11 minutes. Measured: GLA 29.9%,
RetNet 25.3%, attention 25.2% (all still on the plateau). Paper (Fig. 2): GLA > RetNet;
attention solves it. With `--config.data.options.num_pairs=4 --config.model.dim=64` (2 seeds,
see the README): attention 100%, RetNet 65% / 98%, GLA 55% / 43%: GLA > RetNet not reproduced.
`arg`: "smoke" for a seconds-long run.
"""

from research.gla.configs import parse_arg, recipe


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    smoke = parse_arg(arg)
    c = recipe(steps=2000, learning_rate=3e-3, batch_size=32, smoke=smoke)
    c.model.mixer_kwargs = {
        # The paper's gate temperature, explicit so that
        # `--config.model.mixer_kwargs.gla.gate_temperature` can change it (1 leaves the
        # plateau sooner on the tiny task; see the README).
        "gla": {"num_heads": 2, "method": "chunked", "chunk_size": 16, "gate_temperature": 16.0},
        "retnet": {"num_heads": 2},
        "attention": {"num_heads": 2, "max_len": 256},
    }
    c.data.task = "mqar"
    c.data.options = {"seq_len": 64, "num_pairs": 8, "num_keys": 16, "num_values": 16}
    c.study.mixers = ("gla", "retnet", "attention")
    if smoke:
        c.data.options = {"seq_len": 16, "num_pairs": 2, "num_keys": 4, "num_values": 4}
    return c
