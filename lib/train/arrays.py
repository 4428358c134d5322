"""In-memory arrays on the run path (`lib.train.loop.train_and_evaluate`): batches and losses.

Projects whose seed studies train in memory (`lib.train.fit`) also train one model as a run,
with checkpoints that resume: `ArrayBatches` draws the same kind of minibatches as a fit
(uniformly with replacement, fixed by the seed and the step) from arrays and can resume at any
step; `eval_batches` gives the loop a finite evaluation iterator; `array_loss` turns a fit's
`(outputs, targets) -> scalar` loss into the loop's `loss_fn(params, batch, rng, *, model,
train)` contract, so a project states its loss once for both paths.
"""

import json
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from lib.train.fit import accuracy


class ArrayBatches:
    """An endless, resumable iterator of minibatches `{"inputs": x[idx], "targets": y[idx]}`.

    Batch `i` (0-based) draws `batch_size` indices uniformly with replacement from
    `np.random.default_rng([seed, i])`, so the order depends only on the seed and the position
    (`get_state` / `set_state` hold the position). With `with_step`, the batch also holds
    `step: [batch_size]`, the batch's number repeated (for losses that change over training,
    e.g. a regulariser's warm-up; repeated per example so it shards like the data).

    Args:
      inputs, targets: arrays with the same first dimension `n`.
      batch_size: examples per batch.
      seed: the sampling seed.
    """

    def __init__(self, inputs, targets, batch_size: int, seed: int = 0, *, with_step=False):
        self.inputs, self.targets = np.asarray(inputs), np.asarray(targets)
        if len(self.inputs) != len(self.targets) or len(self.inputs) == 0:
            raise ValueError(
                f"inputs ({len(self.inputs)}) and targets ({len(self.targets)}) must be "
                "non-empty and of the same length"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed, self.with_step = batch_size, int(seed), with_step
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        rng = np.random.default_rng([self.seed, self.position])
        idx = rng.integers(0, len(self.inputs), self.batch_size)
        batch = {"inputs": self.inputs[idx], "targets": self.targets[idx]}
        if self.with_step:
            batch["step"] = np.full(self.batch_size, self.position, np.int32)
        self.position += 1
        return batch

    def get_state(self) -> bytes:
        return json.dumps({"position": self.position, "seed": self.seed}).encode()

    def set_state(self, state) -> None:
        state = json.loads(state)
        if state["seed"] != self.seed:
            raise ValueError(f"iterator state is from seed {state['seed']}, not {self.seed}")
        self.position = int(state["position"])


def eval_batches(inputs, targets, batch_size: int = 0) -> Callable:
    """A factory of finite iterators over `(inputs, targets)` in order, `batch_size` at a time
    (0: one batch of everything). A batch is padded to a multiple of the device count (so it
    shards) with copies of its first example of `weight` 0; real examples have `weight` 1
    (`array_loss` averages with these weights)."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    size = batch_size or len(inputs)

    def make():
        devices = jax.device_count()
        for i in range(0, len(inputs), size):
            x, y = inputs[i : i + size], targets[i : i + size]
            pad = -len(x) % devices
            weight = np.concatenate([np.ones(len(x)), np.zeros(pad)]).astype(np.float32)
            x = np.concatenate([x, np.repeat(x[:1], pad, 0)])
            y = np.concatenate([y, np.repeat(y[:1], pad, 0)])
            yield {"inputs": x, "targets": y, "weight": weight}

    return make


def array_loss(
    loss_fn: Callable,
    *,
    metrics: Callable | None = accuracy,
    extra_loss: Callable | None = None,
    train_flag: bool = True,
) -> Callable:
    """The loop's `loss_fn(params, batch, rng, *, model, train, model_state=None)` from a fit's.

    Args:
      loss_fn: `(outputs, targets) -> scalar` (as given to `lib.train.fit.make_fit`).
      metrics: `(outputs, targets) -> {name: scalar}` reported with the loss (None: none).
      extra_loss: `(params, step) -> scalar` added to the loss; `step` is the batch's `step`
        (`ArrayBatches(with_step=True)`), or, in a batch without one (evaluation), a step
        past any warm-up (2**30).
      train_flag: pass `train=` to the model.

    Returns:
      A loss for `lib.train.loop.train_and_evaluate`. A batch with `weight` (`eval_batches`)
      is averaged with it, example by example (`loss_fn` and `metrics` must be means over the
      batch, as they are for `make_fit`). It reports `loss`, `data_loss` (with an
      `extra_loss`), the metrics and `count`. A model with mutable collections (`batch_stats`)
      updates them in training.
    """

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
