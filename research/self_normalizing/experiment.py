"""The two SNN studies (Klambauer et al. 2017): activation statistics at init, and which deep
MLPs the training comparison trains (`launch/self_normalizing.py` runs them through
`lib.train.fit.fit_study`; values from `configs/default.py`).
"""

import jax
import numpy as np

from research.self_normalizing.data import load_arrays
from research.self_normalizing.model import DeepMLP, hidden_statistics, make_study_fit


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


def training_variants(config) -> list:
    """The training study of `config.study`: one `lib.train.fit.Variant` per (data set, depth,
    activation), each `config`'s recipe (`model.make_study_fit`) with that model."""
    from lib.train.fit import Variant

    variants = []
    for dataset in config.study.datasets:
        x_tr, y_tr, x_te, y_te, k = load_arrays(dataset, seed=0)
        for depth in config.study.depths:
            for act in config.study.activations:
                c = config.copy_and_resolve_references()
                c.model.update(depth=depth, activation=act)
                c.data.name = dataset
                fit = make_study_fit(c, k, len(x_tr))
                name = f"{dataset.replace(':', '-')}_d{depth}_{act}"
                fields = {"dataset": dataset, "activation": act, "depth": depth}
                variants.append(Variant(name, fit, (x_tr, y_tr, x_te, y_te), fields=fields))
    return variants


def training_table(rows: list[dict]) -> list[dict]:
    """The README's table from a study's runs: per (data set, activation, depth) the mean and
    (population) std of test accuracy over seeds, the mean final training loss of the seeds
    that stayed finite, and how many seeds ended with a non-finite loss."""
    groups = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["activation"], r["depth"]), []).append(r)
    out = []
    for (dataset, act, depth), group in groups.items():
        acc = np.array([r["test_accuracy"] for r in group])
        loss = np.array([r["final_loss"] for r in group])
        finite = np.isfinite(loss)
        out.append({"dataset": dataset, "activation": act, "depth": depth,
                    "test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std()),
                    "final_train_loss": float(loss[finite].mean()) if finite.any() else float("nan"),
                    "diverged": int((~finite).sum())})  # fmt: skip
    return out
