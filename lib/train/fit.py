"""A whole training run on in-memory arrays as one jitted `lax.scan`, and many seeds at once.

Seed studies on small data sets that fit in memory (sklearn digits, generated series, short
forecasting windows) compare optimisation behaviour over many restarts. One compiled function
that runs a full fit from a PRNG key (init, minibatch sampling, dropout, gradient-noise key,
evaluation) is the fastest form on a CPU and trivially repeatable: call it with another key and
nothing recompiles; `run_seeds(..., vectorize=True)` vmaps it over seeds, so all restarts train
in one compiled program (small models leave a CPU mostly idle one at a time).

For sharded, checkpointed training on `lib.data` pipelines use `lib.train.loop`; for a
classifier trained by epochs use `lib.train.classify`. Here batches are drawn uniformly with
replacement (step `i` draws from `fold_in(k_data, i)`), so a seed fixes the batch order of every
model trained from it: differences between models at one seed are paired.

Used by research/self_normalizing, research/gradient_noise, research/gru_svm and
research/deconstructing (its launcher's `--config.seeds`).

Model convention: a Flax module called as `model.apply(variables, x, train=bool)` (or without
`train` when `train_flag=False`); a `batch_stats` collection, if the model has one, is updated in
training and used in evaluation; a `dropout` RNG is always supplied.
"""

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lib.train.noise import reseed_noise


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy; `logits: [b, k]`, integer `labels: [b]`."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def mean_squared_error(predictions: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean of `(predictions - targets)^2` over every element (float32)."""
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ")
    return jnp.mean(jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32)))


def accuracy(outputs: jax.Array, labels: jax.Array) -> dict:
    """`{"accuracy": mean(argmax(outputs, -1) == labels)}` (the default metric of `make_fit`)."""
    return {"accuracy": jnp.mean(jnp.argmax(outputs, -1) == labels)}


def make_fit(
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    steps: int,
    batch_size: int,
    extra_loss: Callable | None = None,
    metrics: Callable[[jax.Array, jax.Array], dict] | None = accuracy,
    train_flag: bool = True,
):
    """Build a jitted `fit(key, x_train, y_train, x_test, y_test) -> dict` for fixed shapes.

    Args:
      model: Flax module (see module docstring).
      tx: optax optimizer (noise, clipping, schedules already chained in).
      loss_fn: `(outputs, targets) -> scalar`, e.g. `softmax_cross_entropy` or
        `mean_squared_error`.
      steps: number of minibatch updates.
      batch_size: examples per update, sampled uniformly with replacement.
      extra_loss: optional `params -> scalar` added to the loss (e.g. an SVM's `||w||^2`).
      metrics: `(outputs, targets) -> {name: scalar}` evaluated on the whole train and test
        sets after training, reported as `train_<name>` / `test_<name>` (None: none; default
        `accuracy`).
      train_flag: pass `train=True/False` to the model (False for modules without it).

    Returns:
      A jitted function returning `loss` (`[steps]` training curve), `test_loss`, the metrics
      and the final `variables`. Non-finite losses are kept (a diverged run shows NaN).
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")

    def apply(variables, x, train, **kw):
        return model.apply(variables, x, **({"train": train} if train_flag else {}), **kw)

    def fit(key, x_train, y_train, x_test, y_test):
        k_init, k_drop, k_data, k_noise = jax.random.split(key, 4)
        init_kw = {"train": False} if train_flag else {}
        variables = model.init({"params": k_init, "dropout": k_drop}, x_train[:2], **init_kw)
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}
        # Gradient-noise transforms get a per-run key, so one compile serves every seed.
        opt_state = reseed_noise(tx.init(params), k_noise)
        n = x_train.shape[0]

        def loss_of(params, rest, xb, yb, rng):
            out, new_rest = apply(
                {"params": params, **rest}, xb, True, rngs={"dropout": rng}, mutable=list(rest)
            )
            loss = loss_fn(out, yb)
            if extra_loss is not None:
                loss = loss + extra_loss(params)
            return loss, new_rest

        def step(carry, i):
            params, rest, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(k_data, i), (batch_size,), 0, n)
            rng = jax.random.fold_in(k_drop, i)
            (loss, new_rest), g = jax.value_and_grad(loss_of, has_aux=True)(
                params, rest, x_train[idx], y_train[idx], rng
            )
            upd, opt_state = tx.update(g, opt_state, params)
            params = optax.apply_updates(params, upd)
            return (params, {**rest, **new_rest}, opt_state), loss

        (params, rest, _), losses = jax.lax.scan(step, (params, rest, opt_state), jnp.arange(steps))
        final = {"params": params, **rest}
        out_test = apply(final, x_test, False)
        result = {"loss": losses, "test_loss": loss_fn(out_test, y_test), "variables": final}
        if metrics is not None:
            out_train = apply(final, x_train, False)
            for split, out, y in (("train", out_train, y_train), ("test", out_test, y_test)):
                result.update({f"{split}_{k}": v for k, v in metrics(out, y).items()})
        return result

    return jax.jit(fit)


def run_seeds(fit, seeds, data, *, vectorize: bool = False, keep_variables: bool = False):
    """Run a `make_fit` function for every seed on `data = (x_tr, y_tr, x_te, y_te)`.

    Args:
      fit: from `make_fit`.
      seeds: integer seeds (`jax.random.key(seed)` is the run's key).
      data: the four arrays.
      vectorize: run all seeds at once under `jax.vmap` (one compile, much faster for small
        models whose ops are too small to keep a CPU busy; memory grows with the seed count).
      keep_variables: also return each seed's final `variables`.

    Returns:
      One dict per seed: `seed`, every scalar of the fit's result as a Python float
      (`test_loss`, `train_accuracy`, ...), and `final_loss` (mean of the last 10% of the
      training curve); with `keep_variables`, `variables`.
    """
    data = tuple(jnp.asarray(a) for a in data)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    if vectorize:
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        batched = jax.jit(jax.vmap(fit, in_axes=(0, None, None, None, None)))(keys, *data)
        results = [jax.tree.map(lambda a, i=i: a[i], batched) for i in range(len(seeds))]
    else:
        results = (fit(jax.random.key(s), *data) for s in seeds)
    rows = []
    for s, r in zip(seeds, results):
        curve = np.asarray(r["loss"])
        row = {"seed": s}
        row.update({k: float(v) for k, v in r.items() if k not in ("loss", "variables")})
        row["final_loss"] = float(np.mean(curve[-max(len(curve) // 10, 1) :]))
        if keep_variables:
            row["variables"] = r["variables"]
        rows.append(row)
    return rows
