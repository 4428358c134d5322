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


def seed_study(config, seeds, *, num_train: int = 2048, num_test: int = 512) -> list[dict]:
    """GPT and FTP from every seed at once, in memory: the smoothness comparison over seeds.

    Both models (`config.model`, with `kind` set to each in turn) train
    `config.train.num_steps` steps of `lib.train.optim.make_optimizer(config.optimizer)` (the
    optimizer, schedule and clipping a `run` uses) on
    `config.data.batch_size` sequences drawn with replacement from the first `num_train`
    training sequences of `config.data.seq_len` characters; all seeds of a model train at once
    (`lib.train.fit.make_fit`, vmapped over seeds). No checkpoints or curves: for those, and
    for the matched-loss comparison, use `run`.

    Returns:
      One row per (model, seed): `model`, `seed`, `test_bits` (the model's training loss on
      `num_test` validation sequences: FTP's is the mean over its N slots, in bits), and
      `embedding_statistics` of the top-layer embeddings on those sequences (`cos_k`,
      `gcos_k`, `cos_random`, `gcos_random`, `excess_1`).
    """
    from lib.train import losses
    from lib.train.fit import make_fit, run_seeds
    from lib.train.optim import make_optimizer
    from research.future_token_prediction.model import ftp_loss, make_model
    from research.future_token_prediction.smoothness import embedding_statistics

    c = config.copy_and_resolve_references()
    if num_train < c.data.batch_size or num_test < 1:
        raise ValueError(f"num_train {num_train} must be >= the batch size, num_test >= 1")
    built = build(c)
    vocab = built["model"].encoder.vocab_size

    def take(it, n):
        inputs, targets, got = [], [], 0
        for batch in it:
            keep = np.asarray(batch["mask"]).all(axis=1)  # whole sequences only
            inputs.append(np.asarray(batch["inputs"])[keep])
            targets.append(np.asarray(batch["targets"])[keep])
            got += int(keep.sum())
            if got >= n:
                break
        if got < n:
            raise ValueError(f"only {got} whole sequences available, asked for {n}")
        return np.concatenate(inputs)[:n], np.concatenate(targets)[:n]

    x, y = take(iter(built["train_data"]), num_train)
    held_out = built["test_data"] or built["eval_data"]
    x_test, y_test = take(held_out(), num_test)
    steps = c.train.num_steps
    rows = []
    for kind in ("gpt", "ftp"):
        c.model.kind = kind
        model = make_model(c.model, vocab)
        if kind == "gpt":
            loss = lambda logits, t: losses.lm_loss(logits, t)[0]  # noqa: E731
        else:
            decay = c.model.future_decay
            loss = lambda logits, t, d=decay: ftp_loss(logits, t, jnp.ones(t.shape), d)[0]  # noqa: E731
        tx = make_optimizer(c.optimizer, steps)
        fit = make_fit(model, tx, loss, steps=steps, batch_size=c.data.batch_size,
                       metrics=None, train_flag=False)  # fmt: skip
        runs = run_seeds(fit, seeds, (x, y, x_test, y_test), vectorize=True, keep_variables=True)
        embed = jax.jit(lambda v, m=model: m.apply(v, x_test, return_embeddings=True)[1])
        for r in runs:
            h = np.asarray(embed(r["variables"]))
            stats = embedding_statistics(h, np.ones(h.shape[:2]), list(c.model.lags))
            rows.append({"model": kind, "seed": r["seed"],
                         "test_bits": r["test_loss"] / np.log(2), **stats})  # fmt: skip
    return rows
