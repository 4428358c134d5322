"""The three AR-Net experiments (Triebe et al. 2019): recovery, order selection, fit time.

Each function takes plain arguments, returns a list of result rows (dicts) and is called by
`launch/ar_net.py` with values from `research/ar_net/configs/default.py`.
"""

import time

import numpy as np

from research.ar_net.data import (
    estimated_order,
    fit_least_squares,
    generate_ar_process,
    random_stable_coeffs,
    stpe,
)
from research.ar_net.model import FitConfig, fit_ar_net


def _process(p: int, seed: int, length: int, **sampler) -> tuple[np.ndarray, np.ndarray]:
    w = random_stable_coeffs(p, seed, **sampler)
    return w, generate_ar_process(w, length, seed=10_000 + seed)


def recovery(orders, seeds: int, length: int, fit: FitConfig, kind: str = "l1") -> list[dict]:
    """AR-Net (model order = true order, no regulariser) vs least squares, sTPE per process.

    Args:
      kind: coefficient sampler of `random_stable_coeffs` ("l1" or "roots").

    Returns:
      One row per true order: mean and std over `seeds` processes of each method's sTPE (%).
    """
    rows = []
    for p in orders:
        errs = {"ar_net": [], "least_squares": []}
        for s in range(seeds):
            w, y = _process(p, s, length, kind=kind)
            errs["ar_net"].append(stpe(fit_ar_net(y, p, fit)["coeffs"], w))
            errs["least_squares"].append(stpe(fit_least_squares(y, p), w))
        row = {"process": kind, "true_p": p, "model_p": p}
        for k, v in errs.items():
            row[f"{k}_stpe"], row[f"{k}_stpe_std"] = float(np.mean(v)), float(np.std(v))
        rows.append(row)
    return rows


def order_selection(
    true_p: int,
    model_p: int,
    sparsities,
    seeds: int,
    length: int,
    fit: FitConfig,
    tol: float,
    min_abs: float = 0.1,
) -> list[dict]:
    """Overestimated order: fit `model_p > true_p` lags with several sparsity weights.

    Returns:
      One row per method (`least_squares`, then AR-Net per `lambda`): mean sTPE over `seeds`
      processes, the fraction of fits whose `estimated_order` (last lag with `|w| > tol`) equals
      `true_p`, and the mean absolute weight on the surplus lags.
    """
    fits = {"least_squares": []}
    fits.update({f"ar_net_lambda={lam:g}": [] for lam in sparsities})
    truths = []
    for s in range(seeds):
        w, y = _process(true_p, s, length, min_abs=min_abs)
        truths.append(w)
        fits["least_squares"].append(fit_least_squares(y, model_p))
        for lam in sparsities:
            cfg = FitConfig(**{**fit.__dict__, "sparsity": float(lam)})
            fits[f"ar_net_lambda={lam:g}"].append(fit_ar_net(y, model_p, cfg)["coeffs"])
    rows = []
    for name, ws in fits.items():
        rows.append(
            {
                "method": name,
                "true_p": true_p,
                "model_p": model_p,
                "stpe": float(np.mean([stpe(wh, w) for wh, w in zip(ws, truths)])),
                "order_found": float(np.mean([estimated_order(wh, tol) == true_p for wh in ws])),
                "surplus_abs_mean": float(np.mean([np.abs(wh[true_p:]).mean() for wh in ws])),
            }
        )
    return rows


def fit_time(model_orders, true_p: int, length: int, fit: FitConfig) -> list[dict]:
    """Wall time of one fit as the model order grows (one process of order `true_p`).

    AR-Net's time is the compiled fit (compilation reported apart); least squares is
    `numpy.linalg.lstsq` on the lag matrix, including building it, best of 3 (the machine is
    shared, so the minimum is the least noisy estimate).
    """
    w, y = _process(true_p, 0, length)
    rows = []
    for p in model_orders:
        res = fit_ar_net(y, p, fit)
        t_ols = []
        for _ in range(3):
            t0 = time.perf_counter()
            ols = fit_least_squares(y, p)
            t_ols.append(time.perf_counter() - t0)
        t_ols = min(t_ols)
        rows.append(
            {
                "model_p": p,
                "ar_net_seconds": res["fit_seconds"],
                "ar_net_compile_seconds": res["compile_seconds"],
                "least_squares_seconds": t_ols,
                "ar_net_stpe": stpe(res["coeffs"], w),
                "least_squares_stpe": stpe(ols, w),
            }
        )
    return rows
