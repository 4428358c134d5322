"""The two SNN experiments (Klambauer et al. 2017): activation statistics and deep-MLP training.

Called by `launch/self_normalizing.py` with values from `configs/default.py`.
"""

import jax
import numpy as np
import optax

from lib.train.fit import make_fit, run_seeds, softmax_cross_entropy
from research.self_normalizing.data import load_arrays
from research.self_normalizing.model import DeepMLP, hidden_statistics


def activation_statistics(
    activations, depth: int, width: int, in_dim: int, batch: int, seeds: int
) -> list[dict]:
    """Hidden-layer statistics at init on standard-normal inputs, per activation family.

    Returns:
      One row per activation: the last layer's mean and variance (averaged over seeds) and the
      largest deviation from (0, 1) over all layers and seeds.
    """
    rows = []
    for act in activations:
        model = DeepMLP(depth, width, 10, act)
        last_mu, last_var, worst_mu, worst_var = [], [], 0.0, 0.0
        for s in range(seeds):
            x = jax.random.normal(jax.random.key(1000 + s), (batch, in_dim))
            v = model.init({"params": jax.random.key(s)}, x)
            mu, var = (np.asarray(a) for a in hidden_statistics(model, v, x, batch_statistics=True))
            last_mu.append(mu[-1])
            last_var.append(var[-1])
            worst_mu = max(worst_mu, float(np.abs(mu).max()))
            worst_var = max(worst_var, float(np.abs(var - 1).max()))
        rows.append(
            {
                "activation": act,
                "depth": depth,
                "last_layer_mean": float(np.mean(last_mu)),
                "last_layer_var": float(np.mean(last_var)),
                "max_abs_mean": worst_mu,
                "max_abs_var_minus_1": worst_var,
            }
        )
    return rows


def training_comparison(
    datasets,
    activations,
    depths,
    width: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    dropout_rate: float,
    seeds: int,
) -> list[dict]:
    """Train each (data set, activation, depth) MLP with plain SGD over `seeds`.

    Args:
      datasets: names for `load_arrays` ("digits", "ucr:gunpoint", ...).

    Returns:
      One row per (data set, activation, depth): mean and std of test accuracy, mean training
      loss at the end, and how many seeds ended with a non-finite loss.
    """
    rows = []
    for dataset in datasets:
        rows += _compare_on(
            dataset,
            activations,
            depths,
            width,
            steps,
            batch_size,
            learning_rate,
            dropout_rate,
            seeds,
        )
    return rows


def _compare_on(
    dataset, activations, depths, width, steps, batch_size, learning_rate, dropout_rate, seeds
):
    x_tr, y_tr, x_te, y_te, k = load_arrays(dataset, seed=0)
    batch_size = min(batch_size, len(x_tr))
    rows = []
    for depth in depths:
        for act in activations:
            model = DeepMLP(depth, width, k, act, dropout_rate=dropout_rate)
            fit = make_fit(
                model,
                optax.sgd(learning_rate),
                softmax_cross_entropy,
                steps=steps,
                batch_size=batch_size,
            )
            res = run_seeds(fit, range(seeds), (x_tr, y_tr, x_te, y_te), vectorize=True)
            acc = np.array([r["test_accuracy"] for r in res])
            loss = np.array([r["final_loss"] for r in res])
            rows.append(
                {
                    "dataset": dataset,
                    "activation": act,
                    "depth": depth,
                    "test_acc_mean": float(acc.mean()),
                    "test_acc_std": float(acc.std()),
                    "final_train_loss": float(np.nanmean(loss))
                    if np.isfinite(loss).any()
                    else float("nan"),
                    "diverged": int((~np.isfinite(loss)).sum()),
                }
            )
    return rows
