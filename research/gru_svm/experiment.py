"""GRU-SVM vs GRU-softmax (Agarap 2017): paired seeds, difference with a confidence interval.

The study's variants and its table; `launch/gru_svm.py` trains them through
`lib.train.fit.fit_study`. Each seed gives both heads the same initialisation of the shared
layers and the same minibatch order (same PRNG key), so the per-seed accuracy difference is a
paired sample; the interval is the t interval of its mean.
"""

import numpy as np
from scipy import stats

from research.gru_svm.model import load_sequences, make_study_fit


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


def head_variants(config) -> list:
    """The study: one `lib.train.fit.Variant` per head of `config.study.heads`, each trained
    with `config`'s recipe (`model.make_study_fit`) on the same data."""
    from lib.train.fit import Variant

    x_tr, y_tr, x_te, y_te, k = load_sequences(config)
    variants = []
    for head in config.study.heads:
        c = config.copy_and_resolve_references()
        c.model.head = head
        fit = make_study_fit(c, k)
        variants.append(Variant(head, fit, (x_tr, y_tr, x_te, y_te), fields={"head": head}))
    return variants


def heads_table(rows: list[dict]) -> list[dict]:
    """The README's table: per head the mean and (population) std of test accuracy in percent,
    then the SVM-minus-softmax difference over paired seeds with its 95% t interval."""
    acc = {}
    for r in rows:
        acc.setdefault(r["head"], {})[r["seed"]] = 100 * r["test_accuracy"]
    out = [{"head": h, "test_acc_mean": float(np.mean(list(a.values()))),
            "test_acc_std": float(np.std(list(a.values()))), "seeds": len(a)}
           for h, a in acc.items()]  # fmt: skip
    if "svm" in acc and "softmax" in acc:
        seeds = sorted(set(acc["svm"]) & set(acc["softmax"]))
        d = paired_difference([acc["svm"][s] for s in seeds], [acc["softmax"][s] for s in seeds])
        out.append({"head": "svm - softmax (points)", "test_acc_mean": d["mean"],
                    "test_acc_std": float("nan"), "seeds": d["n"], "ci95_low": d["low"],
                    "ci95_high": d["high"]})  # fmt: skip
    return out
