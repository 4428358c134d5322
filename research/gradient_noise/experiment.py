"""Success rate of a 20-layer ReLU net trained by plain SGD, with and without annealed gradient
noise (Neelakantan et al. 2015), over many seeds. Called by `launch/gradient_noise.py`.
"""

import numpy as np
import optax

from lib.train.noise import with_gradient_noise
from research.gradient_noise.model import DeepReLUNet
from research.self_normalizing.data import load_arrays
from research.self_normalizing.fit import make_fit, run_seeds, softmax_cross_entropy


def noise_sweep(
    dataset: str,
    grid,
    gamma: float,
    depth: int,
    width: int,
    init_std: float,
    steps: int,
    batch_size: int,
    learning_rate: float,
    clip_norm: float | None,
    seeds: int,
    success_accuracy: float,
) -> list[dict]:
    """Train every (init, eta) pair of `grid` from `seeds` seeds; `eta = 0` is the baseline.

    Args:
      grid: `{init_scheme: [eta, ...]}`.
      (the rest: model and SGD settings, see configs/default.py)

    Returns:
      One row per (init, eta): success rate (test accuracy >= `success_accuracy`), mean, best
      and std of test accuracy, and the number of diverged (non-finite loss) runs.
    """
    x_tr, y_tr, x_te, y_te, k = load_arrays(dataset, seed=0)
    rows = []
    for init, etas in grid.items():
        model = DeepReLUNet(k, depth, width, init, init_std)
        for eta in etas:
            tx = with_gradient_noise(
                optax.sgd(learning_rate), float(eta), gamma, key=0, clip_norm=clip_norm
            )
            fit = make_fit(model, tx, softmax_cross_entropy, steps=steps, batch_size=batch_size)
            res = run_seeds(fit, range(seeds), (x_tr, y_tr, x_te, y_te), vectorize=True)
            acc = np.array([r["test_accuracy"] for r in res])
            loss = np.array([r["final_loss"] for r in res])
            rows.append(
                {
                    "dataset": dataset,
                    "init": init,
                    "eta": float(eta),
                    "success_rate": float(np.mean(acc >= success_accuracy)),
                    "test_acc_mean": float(acc.mean()),
                    "test_acc_best": float(acc.max()),
                    "test_acc_std": float(acc.std()),
                    "diverged": int((~np.isfinite(loss)).sum()),
                }
            )
    return rows
