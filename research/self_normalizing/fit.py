"""A whole training run on in-memory arrays as one jitted `lax.scan` (used by the SNN paper
reproduction and, through imports, by research/gradient_noise and research/gru_svm).

These projects compare optimisation behaviour over many seeds on small data sets that fit in
memory (sklearn digits, generated series), so one compiled function that runs a full fit from a
PRNG key (init, minibatch sampling, dropout, evaluation) is both the fastest form on a CPU and
trivially repeatable: call it again with another key and nothing recompiles.

Model convention: a Flax module called as `model.apply(variables, x, train=bool)` returning
logits `[b, classes]` (or scores for an SVM head); a `batch_stats` collection, if the model has
one, is updated in training and used in evaluation; a `dropout` RNG is always supplied.
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


def make_fit(
    model: nn.Module,
    tx: optax.GradientTransformation,
    loss_fn: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    steps: int,
    batch_size: int,
    extra_loss: Callable | None = None,
):
    """Build a jitted `fit(key, x_train, y_train, x_test, y_test) -> dict` for fixed shapes.

    Args:
      model: Flax module (see module docstring).
      tx: optax optimizer (noise, clipping, schedules already chained in).
      loss_fn: `(outputs [b, k], labels [b]) -> scalar`.
      steps: number of minibatch updates.
      batch_size: examples per update, sampled uniformly with replacement.
      extra_loss: optional `params -> scalar` added to the loss (e.g. an SVM's `||w||^2`).

    Returns:
      A jitted function returning `loss` (`[steps]` training curve), `train_accuracy`,
      `test_accuracy`, `test_loss` and the final `variables`. Accuracy takes the argmax of the
      model's outputs. Non-finite losses are kept (a diverged run shows NaN; it is not hidden).
    """

    def accuracy(out, y):
        return jnp.mean(jnp.argmax(out, -1) == y)

    def fit(key, x_train, y_train, x_test, y_test):
        k_init, k_drop, k_data, k_noise = jax.random.split(key, 4)
        variables = model.init({"params": k_init, "dropout": k_drop}, x_train[:2], train=False)
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}
        # Gradient-noise transforms get a per-run key, so one compile serves every seed.
        opt_state = reseed_noise(tx.init(params), k_noise)
        n = x_train.shape[0]

        def loss_of(params, rest, xb, yb, rng):
            out, new_rest = model.apply(
                {"params": params, **rest},
                xb,
                train=True,
                rngs={"dropout": rng},
                mutable=list(rest),
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
        out_test = model.apply(final, x_test, train=False)
        out_train = model.apply(final, x_train, train=False)
        return {
            "loss": losses,
            "train_accuracy": accuracy(out_train, y_train),
            "test_accuracy": accuracy(out_test, y_test),
            "test_loss": loss_fn(out_test, y_test),
            "variables": final,
        }

    return jax.jit(fit)


def run_seeds(fit, seeds, data, *, vectorize: bool = False) -> list[dict]:
    """Run a `make_fit` function for every seed on `data = (x_tr, y_tr, x_te, y_te)`.

    Args:
      fit: from `make_fit`.
      seeds: integer seeds.
      data: the four arrays.
      vectorize: run all seeds at once under `jax.vmap` (one compile, much faster for small
        models whose ops are too small to keep a CPU busy; memory grows with the seed count).

    Returns:
      One dict per seed with `seed`, `train_accuracy`, `test_accuracy`, `test_loss`,
      `final_loss` (mean of the last 10% of the curve) as Python floats.
    """
    data = tuple(jnp.asarray(a) for a in data)
    seeds = list(seeds)
    if vectorize:
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds))
        batched = jax.jit(jax.vmap(fit, in_axes=(0, None, None, None, None)))(keys, *data)
        batched.pop("variables")
        results = [jax.tree.map(lambda a, i=i: a[i], batched) for i in range(len(seeds))]
    else:
        results = (fit(jax.random.key(s), *data) for s in seeds)
    rows = []
    for s, r in zip(seeds, results):
        curve = np.asarray(r["loss"])
        tail = curve[-max(len(curve) // 10, 1) :]
        rows.append(
            {
                "seed": int(s),
                "train_accuracy": float(r["train_accuracy"]),
                "test_accuracy": float(r["test_accuracy"]),
                "test_loss": float(r["test_loss"]),
                "final_loss": float(np.mean(tail)),
            }
        )
    return rows
