"""Success rate of a 20-layer ReLU net trained by plain SGD, with and without annealed gradient
noise (Neelakantan et al. 2015), over many seeds. Called by `launch/gradient_noise.py`.

`Restarts` and `restart_summary` are shared with the binary-multiplication experiment
(`multiplication.py`): both count successes over random restarts.
"""

import dataclasses

import numpy as np
import optax

from lib.train.fit import make_fit, run_seeds, softmax_cross_entropy
from lib.train.noise import with_gradient_noise
from research.gradient_noise.model import DeepReLUNet
from research.self_normalizing.data import load_arrays


@dataclasses.dataclass(frozen=True)
class Restarts:
    """Optimisation and restart settings of a noise sweep (see configs/).

    Attributes:
      gamma: annealing exponent of the noise variance `eta / (1 + t)^gamma`.
      steps, batch_size, learning_rate: the optimiser's run.
      clip_norm: global-norm gradient clipping before the noise (None: none).
      seeds: restarts per setting.
      success_accuracy: a restart succeeds when its accuracy reaches this.
      first_seed: restarts use seeds `first_seed, ..., first_seed + seeds - 1` (to add restarts
        to an earlier run).
    """

    gamma: float
    steps: int
    batch_size: int
    learning_rate: float
    clip_norm: float | None
    seeds: int
    success_accuracy: float
    first_seed: int = 0

    @classmethod
    def pop_from(cls, cfg: dict) -> "Restarts":
        """Take this class's fields out of a flat config dict (the rest stays in `cfg`)."""
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: cfg.pop(k) for k in fields if k in cfg})


def restart_summary(accuracy, final_loss, success_accuracy: float, name: str) -> dict:
    """Success count over restarts: `success_rate`, `successes` ("k/n"), the mean, best and
    std of `accuracy` (keys `{name}_mean`, ...), and `diverged` (non-finite final losses).

    Args:
      accuracy, final_loss: one value per restart.
    """
    acc, loss = np.asarray(accuracy, np.float64), np.asarray(final_loss)
    ok = acc >= success_accuracy
    return {
        "success_rate": float(ok.mean()),
        "successes": f"{int(ok.sum())}/{ok.size}",
        f"{name}_mean": float(acc.mean()),
        f"{name}_best": float(acc.max()),
        f"{name}_std": float(acc.std()),
        "diverged": int((~np.isfinite(loss)).sum()),
    }


def noise_sweep(
    dataset: str, grid, depth: int, width: int, init_std: float, restarts: Restarts
) -> list[dict]:
    """Train every (init, eta) pair of `grid` from `restarts.seeds` seeds; `eta = 0` is plain SGD.

    Args:
      grid: `{init_scheme: [eta, ...]}`.
      depth, width, init_std: the `DeepReLUNet`.
      restarts: SGD and success settings.

    Returns:
      One row per (init, eta): success rate (test accuracy >= `success_accuracy`), mean, best
      and std of test accuracy, and the number of diverged (non-finite loss) runs.
    """
    r = restarts
    x_tr, y_tr, x_te, y_te, k = load_arrays(dataset, seed=0)
    rows = []
    for init, etas in grid.items():
        model = DeepReLUNet(k, depth, width, init, init_std)
        for eta in etas:
            tx = with_gradient_noise(
                optax.sgd(r.learning_rate), float(eta), r.gamma, key=0, clip_norm=r.clip_norm
            )
            fit = make_fit(model, tx, softmax_cross_entropy, steps=r.steps, batch_size=r.batch_size)
            res = run_seeds(
                fit,
                range(r.first_seed, r.first_seed + r.seeds),
                (x_tr, y_tr, x_te, y_te),
                vectorize=True,
            )
            acc = [x["test_accuracy"] for x in res]
            loss = [x["final_loss"] for x in res]
            summary = restart_summary(acc, loss, r.success_accuracy, "test_acc")
            rows.append({"dataset": dataset, "init": init, "eta": float(eta), **summary})
    return rows
