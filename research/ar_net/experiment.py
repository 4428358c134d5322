"""The three AR-Net studies (Triebe et al. 2019): recovery, order selection, fit time.

Which processes and models each study fits (`lib.train.fit.Variant`s: one per setting, its
processes fitted at once, one per seed) and the tables read off the fitted coefficients;
`launch/ar_net.py` trains the variants through `lib.train.fit.fit_study`. Values from
`research/ar_net/configs/default.py`.
"""

import time

import numpy as np

from research.ar_net.data import estimated_order, fit_least_squares, lagged_windows, stpe
from research.ar_net.model import ar_coefficients, fit_ar_net, make_process, make_study_fit


def _setting(config, *, true_p, model_p, kind="l1", min_abs=0.0, sparsity=0.0):
    c = config.copy_and_resolve_references()
    c.data.update(true_p=true_p, kind=kind, min_abs=min_abs)
    c.model.update(p=model_p, sparsity=float(sparsity))
    return c


def _processes(c) -> tuple[list, list, tuple]:
    """The truths, the series and the stacked lag windows `(X [seeds, n, p], t [seeds, n])`
    (train and test) of config `c`'s processes, one per seed (`make_process`)."""
    truths, series, xs, ts = [], [], [], []
    for s in range(c.study.seeds):
        w, y = make_process(c.data, s)
        X, t = lagged_windows(y, c.model.p)
        truths.append(w)
        series.append(y)
        xs.append(X.astype(np.float32))
        ts.append(t.astype(np.float32))
    X, t = np.stack(xs), np.stack(ts)
    return truths, series, (X, t, X, t)


def variants(config) -> list:
    """Recovery at the true order (samplers "l1" and "roots"; no regulariser) and order
    selection (`model_p` lags for an AR(`true_p`), one variant per sparsity weight)."""
    from lib.train.fit import Variant

    s = config.study
    settings = [(f"recovery_{kind}_p{p}", dict(true_p=p, model_p=p, kind=kind),
                 {"process": kind, "true_p": p, "model_p": p})
                for kind, orders in (("l1", s.recovery_orders), ("roots", s.hard_orders))
                for p in orders]  # fmt: skip
    settings += [(f"order_lambda{lam:g}",
                  dict(true_p=s.true_p, model_p=s.model_p, min_abs=s.min_abs, sparsity=lam),
                  {"method": f"ar_net_lambda={lam:g}", "true_p": s.true_p, "model_p": s.model_p})
                 for lam in s.sparsities]  # fmt: skip
    out = []
    for name, kw, fields in settings:
        c = _setting(config, **kw)
        _, _, data = _processes(c)
        out.append(Variant(name, make_study_fit(c), data, fields=fields, batched_data=True))
    return out


def tables(config, rows: list[dict]) -> dict:
    """The README's tables from the fitted variants (rows with `variables`): recovery (AR-Net
    and least squares sTPE, mean and std over processes), the same near a unit root, and
    order selection (sTPE, fraction of fits whose estimated order is the truth, mean absolute
    weight on the surplus lags)."""
    s = config.study
    by = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    out = {"recovery": [], "recovery_near_unit_root": [], "order_selection": []}
    for kind, orders, table in (("l1", s.recovery_orders, "recovery"),
                                ("roots", s.hard_orders, "recovery_near_unit_root")):  # fmt: skip
        for p in orders:
            c = _setting(config, true_p=p, model_p=p, kind=kind)
            truths, series, _ = _processes(c)
            runs = sorted(by[f"recovery_{kind}_p{p}"], key=lambda r: r["seed"])
            errs = {
                "ar_net": [stpe(np.asarray(ar_coefficients(r["variables"])), w)
                           for r, w in zip(runs, truths)],
                "least_squares": [stpe(fit_least_squares(y, p), w)
                                  for y, w in zip(series, truths)],
            }  # fmt: skip
            row = {"process": kind, "true_p": p, "model_p": p}
            for k, v in errs.items():
                row[f"{k}_stpe"], row[f"{k}_stpe_std"] = float(np.mean(v)), float(np.std(v))
            out[table].append(row)
    c = _setting(config, true_p=s.true_p, model_p=s.model_p, min_abs=s.min_abs)
    truths, series, _ = _processes(c)
    fits = {"least_squares": [fit_least_squares(y, s.model_p) for y in series]}
    for lam in s.sparsities:
        runs = sorted(by[f"order_lambda{lam:g}"], key=lambda r: r["seed"])
        fits[f"ar_net_lambda={lam:g}"] = [np.asarray(ar_coefficients(r["variables"])) for r in runs]
    for name, ws in fits.items():
        out["order_selection"].append({
            "method": name, "true_p": s.true_p, "model_p": s.model_p,
            "stpe": float(np.mean([stpe(wh, w) for wh, w in zip(ws, truths)])),
            "order_found": float(np.mean([estimated_order(wh, s.order_tol) == s.true_p
                                          for wh in ws])),
            "surplus_abs_mean": float(np.mean([np.abs(wh[s.true_p:]).mean() for wh in ws])),
        })  # fmt: skip
    return out


def fit_time(config) -> list[dict]:
    """Wall time of one fit as the model order grows (one process of order `timing_true_p`).

    AR-Net's time is the compiled fit (compilation reported apart); least squares is
    `numpy.linalg.lstsq` on the lag matrix, including building it, best of 3 (the machine is
    shared, so the minimum is the least noisy estimate).
    """
    s = config.study
    w, y = make_process(_setting(config, true_p=s.timing_true_p, model_p=1).data, 0)
    rows = []
    for p in s.timing_orders:
        res = fit_ar_net(y, _setting(config, true_p=s.timing_true_p, model_p=p))
        t_ols = []
        for _ in range(3):
            t0 = time.perf_counter()
            ols = fit_least_squares(y, p)
            t_ols.append(time.perf_counter() - t0)
        rows.append({
            "model_p": p,
            "ar_net_seconds": res["fit_seconds"],
            "ar_net_compile_seconds": res["compile_seconds"],
            "least_squares_seconds": min(t_ols),
            "ar_net_stpe": stpe(res["coeffs"], w),
            "least_squares_stpe": stpe(ols, w),
        })  # fmt: skip
    return rows
