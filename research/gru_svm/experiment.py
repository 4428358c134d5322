"""GRU-SVM vs GRU-softmax (Agarap 2017): paired seeds, difference with a confidence interval.

Called by `launch/gru_svm.py`. Each seed gives both heads the same initialisation of the shared
layers and the same minibatch order (same PRNG key), so the per-seed accuracy difference is a
paired sample; the interval is the t interval of its mean.
"""

import functools

import numpy as np
import optax
from scipy import stats

from lib.train.fit import make_fit, run_seeds, softmax_cross_entropy
from research.gru_svm.model import GRUClassifier, head_l2, squared_hinge_loss
from research.self_normalizing.data import load_arrays


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """Mean of `a - b` over paired samples with its two-sided t confidence interval.

    Returns:
      dict with `mean`, `low`, `high`, `n` (NaN interval when `n < 2`).
    """
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    n = d.size
    if n < 2:
        return {"mean": float(d.mean()), "low": float("nan"), "high": float("nan"), "n": n}
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * d.std(ddof=1) / np.sqrt(n)
    return {
        "mean": float(d.mean()),
        "low": float(d.mean() - half),
        "high": float(d.mean() + half),
        "n": n,
    }


def compare_heads(
    dataset: str,
    hidden: int,
    dropout_rate: float,
    steps: int,
    batch_size: int,
    learning_rate: float,
    svm_c: float,
    svm_l2: float,
    seeds: int,
) -> list[dict]:
    """Train both heads from `seeds` paired seeds with Adam.

    Returns:
      Rows: one per head (mean / std of test accuracy), then the SVM-minus-softmax difference in
      accuracy points with its 95% t interval.
    """
    x_tr, y_tr, x_te, y_te, k = load_arrays(dataset, seed=0, as_sequence=True)
    model = GRUClassifier(k, hidden, dropout_rate)
    tx = optax.adam(learning_rate)
    losses = {
        "softmax": (softmax_cross_entropy, None),
        "svm": (
            functools.partial(squared_hinge_loss, c=svm_c),
            lambda params, step: head_l2(params, svm_l2),
        ),
    }
    acc = {}
    rows = []
    for head, (loss_fn, extra) in losses.items():
        fit = make_fit(model, tx, loss_fn, steps=steps, batch_size=batch_size, extra_loss=extra)
        res = run_seeds(fit, range(seeds), (x_tr, y_tr, x_te, y_te))
        acc[head] = np.array([r["test_accuracy"] for r in res]) * 100
        rows.append(
            {
                "dataset": dataset,
                "head": head,
                "test_acc_mean": float(acc[head].mean()),
                "test_acc_std": float(acc[head].std()),
                "seeds": seeds,
            }
        )
    d = paired_difference(acc["svm"], acc["softmax"])
    rows.append(
        {
            "dataset": dataset,
            "head": "svm - softmax (points)",
            "test_acc_mean": d["mean"],
            "test_acc_std": float("nan"),
            "seeds": seeds,
            "ci95_low": d["low"],
            "ci95_high": d["high"],
        }
    )
    return rows
