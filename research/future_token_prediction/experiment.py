"""The FTP experiment (Walker, 2024, shrunk): train the GPT baseline and FTP with `lib.train`,
then tabulate next-token loss, embedding smoothness and multi-token accuracy, and compare the
smoothness of the two at the same next-token loss."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from lib.train.loop import train_and_evaluate
from lib.train.metrics import read_metrics
from research.future_token_prediction.model import build
from research.future_token_prediction.smoothness import matched_comparison

SMOOTHNESS_KEYS = ("cos_1", "cos_1c", "cos_far")


def count_params(model, seq_len: int) -> int:
    """Number of parameters of `model` (shapes only)."""
    x = jnp.zeros((1, seq_len), jnp.int32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)))


def train_one(config, kind: str, workdir: str) -> dict:
    """Train `kind` ("gpt" or "ftp") in `<workdir>/<kind>` (resumes if checkpoints exist).

    Returns:
      `{"final": train_and_evaluate's metrics, "curve": eval rows, "params": count}`.
    """
    c = config.copy_and_resolve_references()
    c.model.kind = kind
    built = build(c)
    run_dir = os.path.join(workdir, kind)
    final = train_and_evaluate(c, run_dir, **built)
    curve = [r for r in read_metrics(run_dir) if r["split"] == "eval"]
    return {"final": final, "curve": curve, "params": count_params(built["model"], 8)}


def table_rows(runs: dict, config) -> dict:
    """Result tables from `train_one`'s outputs: `prediction` (next-token loss and accuracy,
    teacher-forced and free-running accuracy of tokens 2..N), `smoothness` (the end-of-run
    analysis over the held-out set) and `matched_validation` (batch-level smoothness at equal
    next-token loss, read off the validation curves)."""
    split = "test" if config.data.evaluate_test else "eval"
    lags = list(config.model.lags)
    prediction, smooth = [], []
    for kind, run in runs.items():
        f = run["final"]
        row = {"model": kind, "params": run["params"], "steps": f["step"]}
        row["bits_per_char"] = f[f"{split}_bits_per_token"]
        row["acc_next"] = f[f"{split}_accuracy"]
        for j in range(2, config.model.n_future + 1):
            row[f"acc_{j}_teacher"] = f.get(f"{split}_acc_{j}", float("nan"))
            row[f"acc_{j}_free"] = f.get(f"{split}_free_acc_{j}", float("nan"))
        for j in range(1, config.model.n_future + 1):
            row[f"rollout_acc_{j}"] = f.get(f"analysis_rollout_acc_{j}", float("nan"))
        prediction.append(row)
        row = {"model": kind}
        for name in ("cos", "gcos"):
            for k in lags + ["random"]:
                row[f"{name}_{k}"] = f.get(f"analysis_{name}_{k}", float("nan"))
        row["excess_1"] = f.get("analysis_excess_1", float("nan"))
        smooth.append(row)
    matched = []
    curves = {kind: run["curve"] for kind, run in runs.items()}
    if len(curves) == 2:
        for key in SMOOTHNESS_KEYS:
            hit = matched_comparison(curves, key)
            if hit is not None:
                matched.append({"metric": key, **hit})
    return {"prediction": prediction, "smoothness": smooth, "matched_validation": matched}


def run(config, workdir: str) -> dict:
    """Train every model of `config.models` and return the result tables."""
    runs = {kind: train_one(config, kind, workdir) for kind in config.models}
    return table_rows(runs, config)
