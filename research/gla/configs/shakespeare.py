"""Character-level Shakespeare (`shakespeare_char`): GLA vs a Transformer and Mamba at equal
parameter count (GLA, Yang et al. 2023, Table 2, shrunk to a ~60k-parameter CPU run).

  python -m lib.data prepare shakespeare_char
  python -m launch.gla --config=research/gla/configs/shakespeare.py

Hardware: a shared 2-core CPU (load ~12). Run time: about 8 minutes. Expected: GLA close to the
Transformer's test bits per character (paper: GLA matches Transformer++ and Mamba at 340M/1.3B).
`arg`: "smoke" for a seconds-long run.
"""

import ml_collections


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    c = ml_collections.ConfigDict()
    c.experiment = "lm"
    c.mixers = ("gla", "attention", "mamba")
    c.mixer_kwargs = {"gla": {"num_heads": 2}, "attention": {"num_heads": 4, "max_len": 256}}
    c.target_params = 60_000
    c.depth = 2
    c.seq_len = 128
    c.batch_size = 16
    c.steps = 300
    c.learning_rate = 3e-3
    c.eval_batches = 16
    c.seed = 0
    if arg == "smoke":
        c.target_params, c.depth, c.seq_len, c.batch_size, c.steps, c.eval_batches = (
            8_000,
            1,
            32,
            2,
            2,
            1,
        )
        c.mixer_kwargs = {"gla": {"num_heads": 2}, "attention": {"num_heads": 2, "max_len": 64}}
    elif arg:
        raise ValueError(f"config arg {arg!r}: expected '' or 'smoke'")
    return c
