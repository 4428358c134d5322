"""Losses with their metrics: masked token cross-entropy (bits per token), classification, MSE.

Every loss returns `(loss, metrics)`: `loss` a float32 scalar to minimize, `metrics` a dict of
float32 scalars that are means over the batch, plus `count` (how many items the means are
over: unmasked tokens, examples), which the loop uses to weight means across eval batches.
"""

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

LN2 = math.log(2.0)


def lm_loss(logits_BxLxV, targets_BxL, mask_BxL=None):
    """Masked next-token cross-entropy.

    Args:
      logits_BxLxV: [b, l, vocab] unnormalized log-probabilities (any float dtype; computed in
        float32).
      targets_BxL: [b, l] int token ids.
      mask_BxL: [b, l], 1 where the loss counts (default: everywhere).

    Returns:
      `(loss, metrics)`: loss = mean cross-entropy in nats over unmasked tokens; metrics
      `loss`, `accuracy`, `bits_per_token` (loss / ln 2), `perplexity` and `count`.
    """
    logits = logits_BxLxV.astype(jnp.float32)
    if targets_BxL.shape != logits.shape[:-1]:
        raise ValueError(
            f"targets must have shape {logits.shape[:-1]} (logits without the vocab axis), "
            f"got {targets_BxL.shape}"
        )
    mask = jnp.ones(targets_BxL.shape, jnp.float32) if mask_BxL is None else mask_BxL
    mask = mask.astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, targets_BxL)
    count = jnp.sum(mask)
    denom = jnp.maximum(count, 1.0)
    loss = jnp.sum(ce * mask) / denom
    correct = (jnp.argmax(logits, -1) == targets_BxL).astype(jnp.float32)
    metrics = {
        "loss": loss,
        "accuracy": jnp.sum(correct * mask) / denom,
        "bits_per_token": loss / LN2,
        "perplexity": jnp.exp(jnp.minimum(loss, 30.0)),
        "count": count,
    }
    return loss, metrics


def lm_loss_fn(params, batch, rng, *, model, train):
    """`lib.train.loop`'s loss function for a token model with no dropout or mutable state:
    `lm_loss` of `model.apply({"params": params}, batch["inputs"])` against `batch["targets"]`
    and `batch["mask"]` (`rng` and `train` unused)."""
    del rng, train
    logits = model.apply({"params": params}, batch["inputs"])
    return lm_loss(logits, batch["targets"], batch.get("mask"))


def classification_loss(logits_BxC, labels_B, *, label_smoothing: float = 0.0):
    """Softmax cross-entropy for class labels.

    Args:
      logits_BxC: [b, classes].
      labels_B: [b] int class ids.
      label_smoothing: mass spread uniformly over the classes (0: plain cross-entropy).

    Returns:
      `(loss, metrics)` with `loss`, `accuracy` and `count`.
    """
    logits = logits_BxC.astype(jnp.float32)
    if labels_B.shape != logits.shape[:-1]:
        raise ValueError(f"labels must have shape {logits.shape[:-1]}, got {labels_B.shape}")
    num_classes = logits.shape[-1]
    onehot = jax.nn.one_hot(labels_B, num_classes)
    if label_smoothing:
        onehot = onehot * (1.0 - label_smoothing) + label_smoothing / num_classes
    loss = jnp.mean(optax.softmax_cross_entropy(logits, onehot))
    accuracy = jnp.mean((jnp.argmax(logits, -1) == labels_B).astype(jnp.float32))
    count = jnp.asarray(labels_B.shape[0], jnp.float32)
    return loss, {"loss": loss, "accuracy": accuracy, "count": count}


def mse_loss(predictions, targets, mask=None):
    """Mean squared error, optionally masked (mask broadcasts against `predictions`).

    Returns:
      `(loss, metrics)` with `loss`, `rmse` and `count` (number of unmasked scalars).
    """
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {predictions.shape} and targets {targets.shape} differ")
    err = jnp.square(predictions.astype(jnp.float32) - targets.astype(jnp.float32))
    if mask is None:
        mask = jnp.ones_like(err)
    mask = jnp.broadcast_to(mask.astype(jnp.float32), err.shape)
    count = jnp.sum(mask)
    loss = jnp.sum(err * mask) / jnp.maximum(count, 1.0)
    return loss, {"loss": loss, "rmse": jnp.sqrt(loss), "count": count}


def array_loss(
    loss_fn: Callable,
    *,
    metrics: Callable | None | str = "accuracy",
    extra_loss: Callable | None = None,
    train_flag: bool = True,
) -> Callable:
    """The loop's `loss_fn(params, batch, rng, *, model, train, model_state=None)` from a fit's.

    Args:
      loss_fn: `(outputs, targets) -> scalar` (as given to `lib.train.fit.make_fit`).
      metrics: `(outputs, targets) -> {name: scalar}` reported with the loss (None: none;
        "accuracy": `lib.train.fit.accuracy`).
      extra_loss: `(params, step) -> scalar` added to the loss; `step` is the batch's `step`
        (`lib.data.arrays.ArrayBatches(with_step=True)`), or, in a batch without one (evaluation), a step
        past any warm-up (2**30).
      train_flag: pass `train=` to the model.

    Returns:
      A loss for `lib.train.loop.train_and_evaluate`. A batch with `weight` (`eval_batches`)
      is averaged with it, example by example (`loss_fn` and `metrics` must be means over the
      batch, as they are for `make_fit`). It reports `loss`, `data_loss` (with an
      `extra_loss`), the metrics and `count`. A model with mutable collections (`batch_stats`)
      updates them in training.
    """

    if metrics == "accuracy":
        from lib.train.fit import accuracy as metrics

    def fn(params, batch, rng, *, model, train, model_state=None):
        x, y = batch["inputs"], batch["targets"]
        kw = {"train": train} if train_flag else {}
        variables = {"params": params, **(model_state or {})}
        if model_state and train:
            out, new_state = model.apply(
                variables, x, rngs={"dropout": rng}, mutable=list(model_state), **kw
            )
        else:
            out, new_state = model.apply(variables, x, rngs={"dropout": rng}, **kw), model_state
        if "weight" in batch:  # per-example values (the means of one example), weighted
            w = batch["weight"].astype(jnp.float32)
            count = jnp.maximum(w.sum(), 1.0)

            def mean_of(f):
                per = jax.vmap(lambda o, t: f(o[None], t[None]))(out, y)
                return jax.tree.map(lambda v: jnp.sum(w * v) / count, per)

            loss = mean_of(loss_fn)
            m = {"count": w.sum(), **(mean_of(metrics) if metrics is not None else {})}
        else:
            loss = loss_fn(out, y)
            m = {"count": jnp.asarray(x.shape[0], jnp.float32)}
            if metrics is not None:
                m.update(metrics(out, y))
        if extra_loss is not None:
            step = batch["step"][0] if "step" in batch else jnp.int32(2**30)
            extra = extra_loss(params, step)
            m.update(data_loss=loss, extra_loss=extra)
            loss = loss + extra
        m = {k: jnp.asarray(v, jnp.float32) for k, v in m.items()}
        return (loss, (m, new_state)) if model_state is not None else (loss, m)

    return fn
