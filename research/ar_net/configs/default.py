"""AR-Net on generated AR(p) processes: recovery, order selection, fit time.

One model (a run with checkpoints, `lib.train.loop`; AR(3) data, order `model.p`):
  python -m launch.train --config=research/ar_net/configs/default.py --workdir=/tmp/ar_run \
      [--config.model.p=30 --config.model.sparsity=0.3]
The studies (each setting's processes fitted at once through lib.train.fit; 2-core CPU, a few
minutes; pin BLAS to one thread for the timing table):
  OPENBLAS_NUM_THREADS=1 python -m launch.ar_net --config=research/ar_net/configs/default.py --workdir=/tmp/ar_net
Smoke (seconds): add `:smoke` to the config path.

Expected (see README): AR-Net's coefficient sTPE within ~1 point of least squares at the true
order; with p overestimated 10x (3 -> 30) and lambda = 0.1-0.3 AR-Net finds order 3 in every run
and its sTPE is about half of least squares'; least squares is faster up to p ~ 500, AR-Net's
time grows more slowly with p. Near-unit-root processes ("roots") do not converge in the budget.
"""

import ml_collections

from lib.train.config import base_config, parse_arg


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Args: `arg` = "smoke" for a seconds-long run, else None/"" for the full run."""
    smoke = parse_arg(arg, flags=("smoke",))["smoke"]
    c = base_config()
    c.project = "ar_net"
    # Linear AR-Net (no hidden layer: its weights are the AR coefficients); sparsity: the
    # weight lambda of R(w), ramped up linearly over the first `sparsity_warmup` of training.
    c.model = ml_collections.ConfigDict(
        dict(p=3, hidden=(), use_bias=False, sparsity=0.0, sparsity_warmup=0.5)
    )
    # The process of a run (`build`): AR(true_p) from sampler `kind` ("l1" or "roots").
    c.data = ml_collections.ConfigDict(
        dict(true_p=3, kind="l1", min_abs=0.0, length=1_000 if smoke else 10_000,
             process_seed=0, batch_size=1024)
    )  # fmt: skip
    # Adam 3e-3, cosine decay to 1% over the run, no clipping or weight decay.
    c.optimizer.update(name="adam", learning_rate=3e-3, schedule="cosine", warmup_steps=0,
                       end_learning_rate_factor=0.01, weight_decay=0.0, grad_clip_norm=0.0)  # fmt: skip
    c.train.update(num_steps=100 if smoke else 3000, log_every=50 if smoke else 500,
                   eval_every=0, checkpoint_every=0)  # fmt: skip
    c.study = ml_collections.ConfigDict(
        dict(
            seeds=1 if smoke else 5,  # processes per setting (process s is fitted with seed s)
            recovery_orders=(3,) if smoke else (3, 7, 12),
            hard_orders=(3,) if smoke else (3, 7),
            true_p=3,
            min_abs=0.1,
            model_p=10 if smoke else 30,
            sparsities=(0.3,) if smoke else (0.0, 0.1, 0.3, 1.0),
            order_tol=0.05,
            timing_orders=(3,) if smoke else (8, 32, 128, 512),
            timing_true_p=3,
        )
    )
    return c
