"""A small classification fit on in-memory arrays: AdamW + warmup-cosine, one jitted step.

Small research projects (ViR, LMUFormer) train classifiers on data sets that fit in memory
(sklearn digits, permuted digits, an MNIST subset) and compare several models in one run;
`fit_classifier` is their shared loop, `train_each` their shared comparison and `load_arrays`
reads a prepared `lib.data` set into memory. For sharded,
checkpointed training on `lib.data` pipelines use `lib.train.loop.train_and_evaluate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import jax
import numpy as np
import optax

ROW_KEYS = ("train_loss", "test_accuracy", "num_params", "seconds")


def load_arrays(name: str, split: str, *, limit: int = 0, data_dir=None, target_key="label"):
    """`(inputs float32 [n, ...], targets [n, ...])` of a prepared `lib.data` set (after its
    read-time transforms, e.g. images scaled to [0, 1], log-mel features), the first `limit`
    examples in stored order (0: all). Targets are `batch[target_key]`: int32 class labels
    for the default "label", float32 otherwise (e.g. "targets" of a forecasting set)."""
    from lib.data.pipeline import data_source, load

    n = len(data_source(name, split, data_dir=data_dir))
    n = min(n, limit) if limit else n
    it = load(name, split, batch_size=n, shuffle=False, num_epochs=1, data_dir=data_dir,
              shard_index=0, shard_count=1)  # fmt: skip
    batch = next(iter(it))
    if target_key not in batch:
        raise KeyError(f"{name}/{split} has no {target_key!r}; its fields: {sorted(batch)}")
    dtype = np.int32 if target_key == "label" else np.float32
    return np.asarray(batch["inputs"], np.float32), np.asarray(batch[target_key], dtype)


def num_params(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(np.size(x) for x in jax.tree.leaves(params)))


def predict(model, params, x, *, batch_size: int = 1024, method=None) -> np.ndarray:
    """`model.apply(params, x)` (or `method`) over `x` in batches; returns numpy logits."""
    fn = jax.jit(lambda p, xb: model.apply(p, xb, method=method))
    return np.concatenate(
        [np.asarray(fn(params, x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
    )


def fit_classifier(
    model,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float = 0.0,
    seed: int = 0,
    max_warmup_steps: int | None = None,
    eval_batch_size: int = 1024,
) -> dict:
    """Train `model` (`logits = model.apply(params, x)`) by softmax cross-entropy.

    Parameters start from `model.init(jax.random.key(seed), x_train[:2])`. Each epoch visits a
    fresh permutation of the training set (`np.random.default_rng(seed)`) in `n // batch_size`
    full batches (the remainder is skipped). AdamW with a warmup-cosine schedule from 0 to `lr`
    and back to 0 over all steps; the warmup is `steps // 10 + 1` steps, at most
    `max_warmup_steps` and at most `steps - 1` (a one-step run uses `lr`).

    Args:
      model: a Flax module mapping `x [b, ...]` to logits `[b, classes]`.
      train, test: `(x [n, ...] float, y [n] int)`.
      epochs, batch_size, lr, weight_decay, seed: the optimisation.
      max_warmup_steps: cap on the warmup length (None: no cap).
      eval_batch_size: test-set batch size.

    Returns:
      dict: `params`; `train_loss` (mean over the last epoch); `test_accuracy`; `num_params`;
      `seconds` (training and evaluation wall time, compilation included).
    """
    (x_tr, y_tr), (x_te, y_te) = train, test
    for name, (x, y) in (("train", train), ("test", test)):
        if len(x) != len(y):
            raise ValueError(f"{name}: {len(x)} inputs but {len(y)} labels")
    if not 1 <= batch_size <= len(y_tr):
        raise ValueError(
            f"batch_size must be in [1, {len(y_tr)}] (the train size), got {batch_size}"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    start = time.time()
    params = model.init(jax.random.key(seed), x_tr[:2])
    steps_per_epoch = len(y_tr) // batch_size
    steps = epochs * steps_per_epoch
    warmup = steps // 10 + 1 if max_warmup_steps is None else min(max_warmup_steps, steps // 10 + 1)
    warmup = min(warmup, steps - 1)  # the cosine part needs at least one step
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps)
    tx = optax.adamw(schedule, weight_decay=weight_decay)
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    @jax.jit
    def train_step(p, o, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        order, losses = rng.permutation(len(y_tr)), []
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            params, opt_state, loss = train_step(params, opt_state, x_tr[idx], y_tr[idx])
            losses.append(float(loss))
    if not np.isfinite(losses).all():
        raise FloatingPointError(f"non-finite training loss in the last epoch: {losses[-5:]}")
    logits = predict(model, params, x_te, batch_size=eval_batch_size)
    return dict(
        params=params,
        train_loss=float(np.mean(losses)),
        test_accuracy=float((logits.argmax(-1) == y_te).mean()),
        num_params=num_params(params),
        seconds=time.time() - start,
    )


def train_each(
    names: Sequence[str], train_fn: Callable[[str], dict], keys: Sequence[str] = ROW_KEYS
) -> list[dict]:
    """`[{"model": name, **{k: train_fn(name)[k] for k in keys}} for name in names]`: one
    table row per model, trained one after another."""
    rows = []
    for name in names:
        result = train_fn(name)
        rows.append({"model": name, **{k: result[k] for k in keys if k in result}})
    return rows
