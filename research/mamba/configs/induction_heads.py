"""Induction heads with length extrapolation (Mamba, Gu & Dao 2023, Table 2), shrunk: train at
length 32 (vocab 8), test at 32 to 8192 (the paper trains at 256 and tests to 1M).

  python -m launch.mamba --config=research/mamba/configs/induction_heads.py --workdir=DIR

Width 32, 2 layers, 400 steps x 64, lr 1e-2 (recipe in configs/__init__.py); 128 test
examples per length, in batches of at most 16384 tokens (metrics `test_len<L>_accuracy`).
A curriculum (`--config.curriculum.seq_len=32 --config.curriculum.num_steps=400`) first trains
at the shorter length, then this run starts from those parameters (see the README).

Hardware: a shared 2-core CPU (load ~15). Run time: about 6 minutes. Expected: Mamba leaves
the chance plateau near step 150 and is near 100% at every test length (paper: 100% up to 1M).
The learning rate matters: at 3e-3 and batch 32 it is still at chance after 400 steps.
`arg`: "smoke" for a seconds-long run.
"""

from research.mamba.configs import parse_arg, recipe


def get_config(arg: str = ""):
    """The config; `arg="smoke"` shrinks it to seconds."""
    smoke = parse_arg(arg)
    c = recipe(steps=400, learning_rate=1e-2, batch_size=64, smoke=smoke)
    c.model.mixer_kwargs = {"mamba": {"state_dim": 16}}
    c.data.task = "induction_heads"
    c.data.options = {"seq_len": 32, "vocab": 8}
    c.data.test_lengths = (32, 128, 512, 2048, 8192)
    if smoke:
        c.data.options = {"seq_len": 16, "vocab": 4}
        c.data.test_lengths, c.data.eval_tokens, c.data.eval_examples = (16, 64), 128, 8
    return c
