"""A whole training run on in-memory arrays as one jitted `lax.scan`, and many seeds at once.

Seed studies on small data sets that fit in memory (sklearn digits, generated series, short
forecasting windows) compare optimisation behaviour over many restarts. One compiled fit that
runs from a PRNG key (init, minibatch sampling, dropout, gradient-noise key, evaluation) is the
fastest form on a CPU and trivially repeatable: call it with another key and nothing
recompiles; `run_seeds(..., vectorize=True)` vmaps it over seeds, so all restarts train in one
compiled program (small models leave a CPU mostly idle one at a time).

`run_seeds` scans in chunks of `log_every` steps (the same compiled chunk called again and
again, so chunked and whole runs give the same numbers) and gives a study the outputs of a run
(`lib.train.loop`): a progress bar, and with a `workdir`, per seed `<workdir>/seed<s>/` with
`metrics.jsonl` (the mean training loss of every chunk, then the final evaluation),
TensorBoard events, `curves.png` and `final_metrics.json`. `fit_study` trains several variants
that way and writes `results.json` / `results.md` (rows and mean/std/min/max over seeds, via
`lib.train.study`). No checkpoints: a fit is short and held in memory; a stopped study is
re-run. For sharded, checkpointed training use `lib.train.loop`.

Batches are drawn uniformly with replacement (step `i` draws from `fold_in(k_data, i)`), so a
seed fixes the batch order of every model trained from it: differences between models at one
seed are paired.

Model convention: a Flax module called as `model.apply(variables, x, train=bool)` (or without
`train` when `train_flag=False`); a `batch_stats` collection, if the model has one, is updated
in training and used in evaluation; a `dropout` RNG is always supplied.
"""

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from lib.train import metrics as metrics_lib
from lib.train.noise import reseed_noise


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over every position; `logits: [..., k]`, integer `labels: [...]`."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def mean_squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean of `(predictions - targets)^2` over every element (float32)."""
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ")
    return jnp.mean(jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32)))


def accuracy(outputs: jax.Array, labels: jax.Array) -> dict:
    """`{"accuracy": mean(argmax(outputs, -1) == labels)}` (the default metric of `make_fit`)."""
    return {"accuracy": jnp.mean(jnp.argmax(outputs, -1) == labels)}


def as_splits(data) -> dict:
    """`(x_train, y_train, x_test, y_test)` or `{split: (x, y)}` (with "train") as a dict."""
    if isinstance(data, dict):
        if "train" not in data:
            raise ValueError(f"data needs a 'train' split, got {sorted(data)}")
        return {k: tuple(v) for k, v in data.items()}
    if len(data) != 4:
        raise ValueError(f"data must be (x_train, y_train, x_test, y_test), got {len(data)} arrays")
    return {"train": tuple(data[:2]), "test": tuple(data[2:])}


class Fit:
    """A training run in pure, jittable pieces (`make_fit` builds it; see there).

    `init(key, x_train, hparams) -> carry`, `chunk(carry, x_train, y_train, start, length)
    -> (carry, {"loss": [length], ...})` (steps `start .. start + length - 1`; steps past
    `steps` leave the carry unchanged), `evaluate(carry, splits) -> results`, and `run(key,
    splits, hparams)` doing all three with one scan. Calling the object runs `run` jitted.
    """

    def __init__(self, model, tx, loss_fn, *, steps, batch_size, extra_loss, metrics, train_flag):
        self.model, self.tx, self.loss_fn = model, tx, loss_fn
        self.steps, self.batch_size = steps, batch_size
        self.extra_loss, self.metrics, self.train_flag = extra_loss, metrics, train_flag
        self._jitted = {}
        self._call = jax.jit(self.run)

    def _apply(self, variables, x, train, **kw):
        flag = {"train": train} if self.train_flag else {}
        return self.model.apply(variables, x, **flag, **kw)

    def _tx(self, hparams):
        if isinstance(self.tx, optax.GradientTransformation):
            return self.tx
        return self.tx(hparams)  # a factory: hyper-parameters traced, one compile for all

    def init(self, key, x_train, hparams=None):
        k_init, k_drop, k_data, k_noise = jax.random.split(key, 4)
        init_kw = {"train": False} if self.train_flag else {}
        variables = self.model.init({"params": k_init, "dropout": k_drop}, x_train[:2], **init_kw)
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}
        # Gradient-noise transforms get a per-run key, so one compile serves every seed.
        opt_state = reseed_noise(self._tx(hparams).init(params), k_noise)
        return dict(params=params, rest=rest, opt_state=opt_state, k_data=k_data,
                    k_drop=k_drop, hparams=hparams)  # fmt: skip

    def chunk(self, carry, x_train, y_train, start, length: int):
        tx, n = self._tx(carry["hparams"]), x_train.shape[0]

        def loss_of(params, rest, xb, yb, rng, i):
            out, new_rest = self._apply(
                {"params": params, **rest}, xb, True, rngs={"dropout": rng}, mutable=list(rest)
            )
            data_loss = self.loss_fn(out, yb)
            if self.extra_loss is None:
                return data_loss, (new_rest, {})
            extra = self.extra_loss(params, i)
            return data_loss + extra, (new_rest, {"data_loss": data_loss, "extra_loss": extra})

        def step(c, i):
            idx = jax.random.randint(jax.random.fold_in(c["k_data"], i), (self.batch_size,), 0, n)
            rng = jax.random.fold_in(c["k_drop"], i)
            (loss, (new_rest, parts)), g = jax.value_and_grad(loss_of, has_aux=True)(
                c["params"], c["rest"], x_train[idx], y_train[idx], rng, i
            )
            upd, opt_state = tx.update(g, c["opt_state"], c["params"])
            new = dict(c, params=optax.apply_updates(c["params"], upd),
                       rest={**c["rest"], **new_rest}, opt_state=opt_state)  # fmt: skip
            if self.steps % length:  # a last, partial chunk: steps past the end change nothing
                new = jax.tree.map(lambda a, b: jnp.where(i < self.steps, a, b), new, c)
            return new, {"loss": loss, **parts}

        return jax.lax.scan(step, carry, start + jnp.arange(length))

    def evaluate(self, carry, splits):
        final = {"params": carry["params"], **carry["rest"]}
        result = {"variables": final}
        for name, (x, y) in splits.items():
            if name == "train" and self.metrics is None:
                continue
            out = self._apply(final, x, False)
            if name != "train":
                result[f"{name}_loss"] = self.loss_fn(out, y)
            if self.metrics is not None:
                result.update({f"{name}_{k}": v for k, v in self.metrics(out, y).items()})
        return result

    def run(self, key, splits, hparams=None):
        carry = self.init(key, splits["train"][0], hparams)
        carry, curves = self.chunk(carry, *splits["train"], 0, self.steps)
        return {**self.evaluate(carry, splits), **curves}

    def __call__(self, key, *data, hparams=None):
        """The whole run, jitted: `fit(key, x_tr, y_tr, x_te, y_te)` or `fit(key, splits)`."""
        splits = as_splits(data[0] if len(data) == 1 else data)
        return self._call(key, jax.tree.map(jnp.asarray, splits), hparams)

    def jitted(self, vectorize: bool, length: int, batched_data: bool):
        """`(init, chunk, evaluate)` jitted (vmapped over seeds with `vectorize`), cached."""
        k = (vectorize, length, batched_data)
        if k not in self._jitted:
            init, evaluate = self.init, self.evaluate
            chunk = lambda c, x, y, s: self.chunk(c, x, y, s, length)  # noqa: E731
            if vectorize:
                d = 0 if batched_data else None
                init = jax.vmap(init, in_axes=(0, d, None))
                chunk = jax.vmap(chunk, in_axes=(0, d, d, None))
                evaluate = jax.vmap(evaluate, in_axes=(0, d))
            self._jitted[k] = (jax.jit(init), jax.jit(chunk), jax.jit(evaluate))
        return self._jitted[k]


def make_fit(
    model: nn.Module,
    tx: optax.GradientTransformation | Callable[[Any], optax.GradientTransformation],
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    steps: int,
    batch_size: int,
    extra_loss: Callable | None = None,
    metrics: Callable[[jax.Array, jax.Array], dict] | None = accuracy,
    train_flag: bool = True,
) -> Fit:
    """Build a fit for fixed shapes: `fit(key, x_train, y_train, x_test, y_test) -> dict`.

    Args:
      model: Flax module (see module docstring).
      tx: optax optimizer (noise, clipping, schedules already chained in), or a factory
        `hparams -> optimizer` whose hyper-parameters (e.g. a gradient-noise `eta`) are traced
        arrays given to `run_seeds(hparams=...)`, so one compile serves every setting.
      loss_fn: `(outputs, targets) -> scalar`, e.g. `softmax_cross_entropy` or
        `mean_squared_error`.
      steps: number of minibatch updates.
      batch_size: examples per update, sampled uniformly with replacement.
      extra_loss: optional `(params, step) -> scalar` added to the loss (e.g. an SVM's
        `||w||^2`, a regulariser ramped up over steps); the curves then also hold `data_loss`
        and `extra_loss`.
      metrics: `(outputs, targets) -> {name: scalar}` evaluated on every split after training,
        reported as `<split>_<name>` (None: none; default `accuracy`).
      train_flag: pass `train=True/False` to the model (False for modules without it).

    Returns:
      A `Fit`; calling it runs the whole fit jitted and returns `loss` (`[steps]` training
      curve), `<split>_loss` of every held-out split, the metrics and the final `variables`.
      Non-finite losses are kept (a diverged run shows NaN).
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    return Fit(model, tx, loss_fn, steps=steps, batch_size=batch_size, extra_loss=extra_loss,
               metrics=metrics, train_flag=train_flag)  # fmt: skip


def run_seeds(
    fit: Fit,
    seeds,
    data,
    *,
    vectorize: bool = False,
    keep_variables: bool = False,
    hparams=None,
    batched_data: bool = False,
    workdir: str | None = None,
    log_every: int | None = None,
    progress: bool = True,
    desc: str | None = None,
) -> list[dict]:
    """Run a `make_fit` fit for every seed, in chunks of `log_every` steps, with its outputs.

    Args:
      fit: from `make_fit`.
      seeds: integer seeds (`jax.random.key(seed)` is the run's key).
      data: `(x_tr, y_tr, x_te, y_te)` or `{split: (x, y)}` with a "train" split.
      vectorize: run all seeds at once under `jax.vmap` (one compile, much faster for small
        models whose ops are too small to keep a CPU busy; memory grows with the seed count).
      keep_variables: also return each seed's final `variables`.
      hparams: the hyper-parameters of a `tx` factory (same for every seed).
      batched_data: every array of `data` has a leading axis of one entry per seed (each seed
        its own data set, e.g. its own generated process).
      workdir: write each seed's outputs to `<workdir>/seed<s>/` (None: only the bar).
      log_every: steps per chunk, i.e. per progress update and `metrics.jsonl` row (None: one
        chunk of all steps). The chunks are one compiled scan called repeatedly; the result
        equals the whole run's.
      progress: show a tqdm bar (steps of all seeds).
      desc: the bar's label.

    Returns:
      One dict per seed: `seed`, every scalar of the fit's result as a Python float
      (`test_loss`, `train_accuracy`, ...), and `final_loss` (mean of the last 10% of the
      training curve); with `keep_variables`, `variables`.
    """
    splits = jax.tree.map(jnp.asarray, as_splits(data))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    length = min(int(log_every or fit.steps), fit.steps)
    if length < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    groups = [seeds] if vectorize else [[s] for s in seeds]
    init, chunk, evaluate = fit.jitted(vectorize, length, batched_data)
    writers = {s: _writer(workdir, s) for s in seeds}
    bar = tqdm(total=fit.steps * len(groups), disable=not progress, desc=desc,
               dynamic_ncols=True, leave=False)  # fmt: skip
    results = {}
    try:
        for g, group in enumerate(groups):
            if vectorize:
                key, sub = jax.vmap(jax.random.key)(jnp.asarray(group)), splits
            else:
                key = jax.random.key(group[0])
                sub = jax.tree.map(lambda a, g=g: a[g], splits) if batched_data else splits
            fns = (init, chunk, evaluate)
            results.update(
                _run_group(fit, fns, key, sub, hparams, group, length, writers, bar, vectorize)
            )
    finally:
        bar.close()
    rows = []
    for s in seeds:
        r = results[s]
        curve = r["loss"]
        row = {"seed": s}
        row.update({k: float(v) for k, v in r.items() if k != "variables" and np.ndim(v) == 0})
        row["final_loss"] = float(np.mean(curve[-max(len(curve) // 10, 1) :]))
        _finish(writers[s], row, fit.steps, [k for k in splits if k != "train"])
        if keep_variables:
            row["variables"] = r["variables"]
        rows.append(row)
    return rows


def _run_group(fit, fns, key, splits, hparams, group, length, writers, bar, vectorized) -> dict:
    """Train one group of seeds (all of them vmapped, or one) chunk by chunk; seed -> result
    (the scalars and `variables` of `evaluate`, and the curves as `[steps]` arrays)."""
    init, chunk, evaluate = fns
    lead = (lambda a: a) if vectorized else (lambda a: np.asarray(a)[None])  # a seed axis
    carry = init(key, splits["train"][0], hparams)
    curves = []
    for start in range(0, fit.steps, length):
        carry, part = chunk(carry, *splits["train"], jnp.asarray(start, jnp.int32))
        n = min(length, fit.steps - start)
        part = {k: lead(np.asarray(v))[:, :n] for k, v in jax.device_get(part).items()}
        curves.append(part)
        for j, s in enumerate(group):
            if writers[s]:
                writers[s].write(start + n, "train", {k: v[j].mean() for k, v in part.items()})
        bar.update(n)
        bar.set_postfix(loss=f"{np.nanmean(part['loss'][:, -1]):.4f}")
    final = jax.tree.map(lead, jax.device_get(evaluate(carry, splits)))
    out = {}
    for j, s in enumerate(group):
        out[s] = jax.tree.map(lambda a, j=j: np.asarray(a)[j], final)
        out[s].update({k: np.concatenate([c[k][j] for c in curves]) for k in curves[0]})
    return out


def _writer(workdir, seed):
    if not workdir:
        return None
    sub = os.path.join(workdir, f"seed{seed}")
    if os.path.exists(os.path.join(sub, metrics_lib.METRICS_FILE)):
        os.remove(os.path.join(sub, metrics_lib.METRICS_FILE))  # a re-run starts a fresh log
    return metrics_lib.MetricsWriter(sub)


def _finish(writer, row: dict, steps: int, held_out: list[str]) -> None:
    """The final evaluation rows (a "validation" split logs as "eval"), `final_metrics.json`
    and `curves.png` of one seed."""
    if writer is None:
        return
    for split in held_out:
        values = {k[len(split) + 1 :]: v for k, v in row.items() if k.startswith(split + "_")}
        writer.write(steps, "eval" if split == "validation" else split, values)
    writer.close()
    workdir = os.path.dirname(writer.path)
    with open(os.path.join(workdir, "final_metrics.json"), "w") as f:
        json.dump({"step": steps, **row}, f, indent=2, default=_jsonable)
    metrics_lib.plot_curves(workdir)


class Variant(NamedTuple):
    """One setting of a `fit_study`: a folder `name`, its fit and data, the `hparams` of a
    `tx` factory, and `fields` (e.g. `{"depth": 8}`) copied into each of its rows."""

    name: str
    fit: Fit
    data: Any
    hparams: Any = None
    fields: dict = {}
    batched_data: bool = False


def fit_study(
    workdir: str | None,
    variants: Sequence[Variant],
    seeds,
    *,
    keys: Sequence[str] = (),
    vectorize: bool = True,
    log_every: int | None = None,
    name: str = "runs",
    tables: Callable[[list[dict]], dict] | None = None,
    keep_variables: bool = False,
) -> list[dict]:
    """Every variant at every seed through `run_seeds`, outputs in `<workdir>/<variant>/seed<s>`.

    Writes (with a `workdir`) and prints the table of runs `name`, a `summary` over seeds of
    `keys` (`lib.train.study.summarize`: mean, std, min, max per variant) and any extra
    tables `tables(rows)` returns, as `results.json` / `results.md` (`lib.train.study.report`).

    Returns:
      One row per (variant, seed): `variant`, the variant's `fields`, then `run_seeds`' row.
    """
    from lib.train.study import report, summarize

    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise ValueError(f"fit_study: variant names repeat: {names}")
    rows = []
    for v in variants:
        sub = os.path.join(workdir, v.name) if workdir else None
        runs = run_seeds(v.fit, seeds, v.data, vectorize=vectorize, hparams=v.hparams,
                         batched_data=v.batched_data, workdir=sub, log_every=log_every,
                         desc=v.name, keep_variables=keep_variables)  # fmt: skip
        rows += [{"variant": v.name, **v.fields, **r} for r in runs]
    out = {name: [{k: x for k, x in r.items() if k != "variables"} for r in rows]}
    if keys:
        out["summary"] = summarize(rows, keys)
    if tables is not None:
        out.update(tables(rows))
    report(out, workdir)
    return rows


def _jsonable(v):
    return v.item() if isinstance(v, np.generic) else str(v)
