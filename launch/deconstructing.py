"""Forecast with recurrence / gating / attention toggled; see research/deconstructing/README.md.

  python -m launch.deconstructing \
      --config=research/deconstructing/configs/forecast.py:lorenz96,all \
      --workdir=workdirs/deconstructing/lorenz96
  (append ",matched" to the config argument for parameter-matched variants; a variant list
  such as "rnn+gru" and `--config.seeds=0,1,2` run several variants over several seeds and
  add a mean +- std table)
"""

import copy
import os

import numpy as np

from launch._report import main, report


def run_one(config, workdir: str) -> dict:
    """Train one variant at one seed (`config.model.variant`, `config.seed`); its result row."""
    from lib.train.loop import train_and_evaluate
    from research.deconstructing.model import build, count_params, model_width

    parts = build(config)
    features = parts["model"].features
    dim, mlp_dim = model_width(config, features)
    m = config.model
    n_params = count_params(m.variant, features, dim, m.depth, m.num_heads, mlp_dim)
    r = train_and_evaluate(config, workdir, **parts)
    mse, pers = float(r["test_loss"]), float(r["test_persistence_mse"])
    return {"data": config.data.name, "variant": m.variant, "seed": config.seed, "dim": dim,
            "mlp_dim": mlp_dim, "params": n_params, "test_mse": mse,
            "persistence_mse": pers, "relative_mse": mse / pers}  # fmt: skip


def summarize(rows: list[dict]) -> list[dict]:
    """Per variant: mean, sample std, min and max of `relative_mse` over its seeds."""
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        rel = np.array([r["relative_mse"] for r in rows if r["variant"] == name])
        std = float(rel.std(ddof=1)) if len(rel) > 1 else float("nan")
        out.append({"variant": name, "seeds": len(rel), "mean": float(rel.mean()), "std": std,
                    "min": float(rel.min()), "max": float(rel.max())})  # fmt: skip
    return out


def run(base, workdir=None) -> dict:
    """Every variant of `base.model.variant` ("all", one name, or names joined by "+") at
    every seed of `base.seeds` (default: `base.seed` alone); tables of rows and, over
    several seeds, of the per-variant mean +- std (also printed and saved under `workdir`)."""
    from research.deconstructing.model import VARIANTS

    v = base.model.variant
    names = list(VARIANTS) if v == "all" else v.split("+")
    seeds = [int(s) for s in base.get("seeds", None) or [base.seed]]
    rows = []
    for seed in seeds:
        for name in names:
            config = copy.deepcopy(base)
            config.model.variant, config.seed = name, seed
            sub = os.path.join(workdir or "workdirs/deconstructing", f"{name}_seed{seed}")
            rows.append(run_one(config, sub))
            print(rows[-1], flush=True)
    results = {f"deconstructing_{base.data.name}": rows}
    if len(seeds) > 1:
        results[f"deconstructing_{base.data.name}_over_seeds"] = summarize(rows)
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(run, "research/deconstructing/configs/forecast.py:<data>,<variant>[,matched]")
