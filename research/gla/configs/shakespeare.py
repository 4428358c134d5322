"""Character-level Shakespeare (`shakespeare_char`): GLA vs a Transformer and Mamba at equal
parameter count (GLA, Yang et al. 2023, Table 2, shrunk to a ~60k-parameter CPU run).

  python -m lib.data prepare shakespeare_char
  python -m launch.gla --config=research/gla/configs/shakespeare.py --workdir=DIR

Each model at the width whose parameter count is nearest 60k, 2 layers, 300 steps x 16
sequences of 128 characters, lr 3e-3 (recipe in configs/__init__.py), 16 test batches.

Hardware: a shared 2-core CPU (load ~12). Run time: about 8 minutes. Expected: GLA close to the
Transformer's test bits per character (paper: GLA matches Transformer++ and Mamba at 340M/1.3B).
`arg`: "smoke" for a seconds-long run.
"""

from research.gla.configs import parse_arg, recipe


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    smoke = parse_arg(arg)
    c = recipe(steps=300, learning_rate=3e-3, batch_size=16, smoke=smoke)
    c.model.mixer_kwargs = {"gla": {"num_heads": 2}, "attention": {"num_heads": 4, "max_len": 256}}
    c.model.target_params = 60_000
    c.data.task = "shakespeare_char"
    c.data.seq_len = 128
    c.data.test_batches = 16
    c.study.mixers = ("gla", "attention", "mamba")
    if smoke:
        c.model.target_params, c.data.seq_len = 8_000, 32
        c.model.mixer_kwargs = {
            "gla": {"num_heads": 2},
            "attention": {"num_heads": 2, "max_len": 64},
        }
    return c
