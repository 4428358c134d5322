"""Selective copying (Mamba, Gu & Dao 2023, Table 1): Mamba vs an LTI SSM (S4D) mixer.

  python -m launch.mamba --config=research/mamba/configs/selective_copying.py --workdir=DIR
  python -m launch.train --config=research/mamba/configs/selective_copying.py \
      --config.model.mixer=s4d --workdir=DIR       (one model)

Shrunk to 32 positions + 4 copied tokens from a vocabulary of 8 (chance 12.5%), width 32,
2 layers, 600 steps x 64, lr 1e-2 (recipe in configs/__init__.py).

Hardware: a shared 2-core CPU (load ~16). Run time: about 8 minutes. Expected: Mamba leaves
the plateau near step 150 and passes 90% by step 400; S4D well below (paper: S6 99.8% vs S4
18.3%, at length 4096, 16 tokens). At learning rate 3e-3, batch 32, Mamba is still at chance
after 400 steps.
`arg`: "smoke" for a seconds-long run.
"""

from research.mamba.configs import parse_arg, recipe


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    smoke = parse_arg(arg)
    c = recipe(steps=600, learning_rate=1e-2, batch_size=64, smoke=smoke)
    c.model.mixer_kwargs = {"mamba": {"state_dim": 16}, "s4d": {"state_dim": 16}}
    c.data.task = "selective_copying"
    c.data.options = {"seq_len": 32, "num_tokens": 4, "vocab": 8}
    c.study.mixers = ("mamba", "s4d")
    if smoke:
        c.data.options = {"seq_len": 16, "num_tokens": 2, "vocab": 4}
    return c
