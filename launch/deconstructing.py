"""Forecast with recurrence / gating / attention toggled; see research/deconstructing/README.md.

  python -m launch.deconstructing \
      --config=research/deconstructing/configs/forecast.py:lorenz96,all \
      --workdir=workdirs/deconstructing/lorenz96
  (append ",matched" to the config argument for parameter-matched variants; a variant list
  such as "rnn+gru" runs several variants; `--config.seeds="(0,1,2,3,4)"` is a seed study:
  each variant's seeds train at once in memory (`lib.train.fit`, vmapped over seeds) and a
  mean +- std table is added)

One seed (`--config.seed`, the default) trains through `lib.train.loop.train_and_evaluate`
(shuffled epochs, checkpoints, metrics, resumable). A seed study trains the same model,
optimizer, step count and batch size as one jitted scan per variant, batches drawn with
replacement in an order fixed by the seed (the same for every variant, so differences are
paired); so a seed's number there is not the single-seed run's (e.g. the RNN on Lorenz-96 at
seed 0: 0.632 vs 0.631, research/deconstructing/README.md).
"""

import copy
import os

import numpy as np

from launch._common import main
from launch._report import report


def _row(config, features: int, seed: int, mse: float, pers: float) -> dict:
    """One result row: the variant's size and its test MSE, also relative to persistence."""
    from research.deconstructing.model import count_params, model_width

    m = config.model
    dim, mlp_dim = model_width(config, features)
    n_params = count_params(m.variant, features, dim, m.depth, m.num_heads, mlp_dim)
    return {"data": config.data.name, "variant": m.variant, "seed": seed, "dim": dim,
            "mlp_dim": mlp_dim, "params": n_params, "test_mse": mse,
            "persistence_mse": pers, "relative_mse": mse / pers}  # fmt: skip


def run_one(config, workdir: str) -> dict:
    """Train one variant at one seed (`config.model.variant`, `config.seed`); its result row."""
    from lib.train.loop import train_and_evaluate
    from research.deconstructing.model import build

    parts = build(config)
    r = train_and_evaluate(config, workdir, **parts)
    mse, pers = float(r["test_loss"]), float(r["test_persistence_mse"])
    return _row(config, parts["model"].features, config.seed, mse, pers)


def run_seed_study(config, seeds) -> list[dict]:
    """Rows of `run_one`'s form for `config.model.variant` at every seed of `seeds`, all seeds
    trained at once (`lib.train.fit.make_fit` vmapped by `run_seeds`) on the whole prepared
    train split held in memory; test MSE over the whole test split."""
    from lib.data.arrays import load_arrays
    from lib.train.fit import make_fit, mean_squared_error, run_seeds
    from lib.train.optim import make_optimizer
    from research.deconstructing.model import data_info, data_name, make_model

    features = data_info(config)["input_dim"]
    d, name = config.data.data_dir or None, data_name(config)
    x, y = load_arrays(name, "train", data_dir=d, target_key="targets")
    x_test, y_test = load_arrays(name, "test", data_dir=d, target_key="targets")
    model = make_model(config, features)
    tx = make_optimizer(config.optimizer, config.train.num_steps)
    fit = make_fit(model, tx, mean_squared_error, steps=config.train.num_steps,
                   batch_size=config.data.batch_size, metrics=None, train_flag=False)  # fmt: skip
    pers = float(np.mean(np.square(x_test - y_test)))
    runs = run_seeds(fit, seeds, (x, y, x_test, y_test), vectorize=True)
    return [_row(config, features, r["seed"], r["test_loss"], pers) for r in runs]


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
    """Every variant of `base.model.variant` ("all", one name, or names joined by "+"): at
    `base.seed` through `run_one`, or, when `base.seeds` is set, at every one of those seeds
    through `run_seed_study`; tables of rows and, over several seeds, of the per-variant
    mean +- std (also printed and saved under `workdir`)."""
    from research.deconstructing.model import VARIANTS

    v = base.model.variant
    names = list(VARIANTS) if v == "all" else v.split("+")
    seeds = [int(s) for s in base.get("seeds", None) or ()]
    rows = []
    for name in names:
        config = copy.deepcopy(base)
        config.model.variant = name
        if seeds:
            new = run_seed_study(config, seeds)
        else:
            sub = os.path.join(workdir or "workdirs/deconstructing", f"{name}_seed{base.seed}")
            new = [run_one(config, sub)]
        for row in new:
            print(row, flush=True)
        rows += new
    results = {f"deconstructing_{base.data.name}": rows}
    if len(seeds) > 1:
        results[f"deconstructing_{base.data.name}_over_seeds"] = summarize(rows)
    report(results, workdir)
    return results


if __name__ == "__main__":
    main(
        run,
        "research/deconstructing/configs/forecast.py:<data>,<variant>[,matched]",
        project="deconstructing",
    )
