"""AR-Net on generated AR(p) processes: recovery, order selection, fit time.

Full run (2-core CPU, a few minutes; pin BLAS to one thread for the timing table):
  OPENBLAS_NUM_THREADS=1 python -m launch.ar_net --config=research/ar_net/configs/default.py --workdir=/tmp/ar_net
Smoke (seconds):
  python -m launch.ar_net --config=research/ar_net/configs/default.py:smoke

Expected (see README): AR-Net's coefficient sTPE within ~1 point of least squares at the true
order; with p overestimated 10x (3 -> 30) and lambda = 0.1-0.3 AR-Net finds order 3 in every run
and its sTPE is about half of least squares'; least squares is faster up to p ~ 500, AR-Net's
time grows more slowly with p. Near-unit-root processes ("roots") do not converge in the budget.
"""

import ml_collections

from lib.train.config import parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = ml_collections.ConfigDict()
    c.length = 1_000 if smoke else 10_000
    c.seeds = 1 if smoke else 5
    c.fit = ml_collections.ConfigDict(
        dict(steps=100 if smoke else 3000, batch_size=1024, learning_rate=3e-3, sparsity_warmup=0.5)
    )
    c.recovery_orders = (3,) if smoke else (3, 7, 12)
    c.hard_orders = (3,) if smoke else (3, 7)
    c.true_p = 3
    c.min_abs = 0.1
    c.model_p = 10 if smoke else 30
    c.sparsities = (0.3,) if smoke else (0.0, 0.1, 0.3, 1.0)
    c.order_tol = 0.05
    c.timing_orders = (3,) if smoke else (8, 32, 128, 512)
    c.timing_true_p = 3
    return c
