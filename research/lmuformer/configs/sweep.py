"""Parameters vs accuracy: LMUFormer and Transformer at three widths each on permuted
sequential digits (the paper's "fewer parameters for similar accuracy" claim, small scale).

Command (six runs of 20 epochs; 17 min wall on a 2-core CPU loaded by other jobs):
    python -m launch.lmuformer --config=research/lmuformer/configs/sweep.py --workdir=/tmp/sw
    python -m launch.lmuformer --config=research/lmuformer/configs/sweep.py:smoke --workdir=...
Hardware: CPU. Output: one row per (model, dim) with params and test accuracy (see README).
"""

from lib.train.config import parse_arg
from research.lmuformer.configs import psdigits


def get_config(arg: str | None = None):
    """`arg`: None (dims 16, 32, 64) or "smoke" (dims 8 and 16, the smoke recipe)."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = psdigits.get_config("smoke" if smoke else None)
    c.study.models = ("lmuformer", "transformer")
    c.study.dims = (8, 16) if smoke else (16, 32, 64)
    return c
