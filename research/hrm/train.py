"""Hierarchical Reasoning Model (Wang et al. 2025): deep-supervision training and ACT evaluation.

Each batch runs `segments` (M) forward segments; after each one the loss is taken, the
optimizer steps, and the carried (z_H, z_L) is detached before the next segment (deep
supervision). The Q head's halt logit learns "is this segment's answer right"; with
`config.model.q_continue` its continue logit also learns the Q-learning target of HRM's ACT
(the best Q of the next segment, `research.hrm.model.q_continue_target`). At test time an
example halts at the first segment whose Q head says halt (sigmoid(q_halt) > 0.5, or
Q_halt > Q_continue with the continue target), or at M: we report accuracy at M segments and
with halting. With `config.model.train_halting` the same rule also stops examples in training,
after a randomized minimum segment count (`draw_min_segments`, probability
`config.model.explore_prob`).
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lib.train.optim import make_optimizer
from research.hrm.model import (
    draw_min_segments,
    make_model,
    q_continue_target,
    segment_loss,
    training_halt,
)
from research.hrm.sudoku4 import batches, make_split

_SUDOKU4 = {}


def prepare_data(config):
    """Prepare `config.data.name` with `builder_kwargs` (rebuilt if prepared with other ones).
    "sudoku4" is built in memory by `research.hrm.sudoku4`."""
    import lib.data

    if config.data.name == "sudoku4":
        key = tuple(sorted(config.data.builder_kwargs.items())) + (config.seed,)
        if key not in _SUDOKU4:
            _SUDOKU4[key] = make_split(**dict(config.data.builder_kwargs), seed=config.seed)
        return {"vocab_size": 5, "data": _SUDOKU4[key]}

    d = config.data
    kwargs, data_dir = dict(d.builder_kwargs), d.data_dir or None
    prepared = lib.data.registry.is_prepared(d.name, data_dir)
    if not prepared or any(
        lib.data.info(d.name, data_dir).get("config", {}).get(k) != v for k, v in kwargs.items()
    ):
        lib.data.prepare(d.name, data_dir, overwrite=prepared, **kwargs)
    return lib.data.info(d.name, data_dir)


def loader(config, split: str, training: bool):
    """Batches {inputs, targets, mask} of `split` (endless and shuffled when training)."""
    import lib.data

    d = config.data
    if d.name == "sudoku4":
        data = prepare_data(config)["data"]["test" if split != "train" else "train"]
        return batches(data, d.batch_size, config.seed, training)
    return lib.data.load(
        d.name, split, batch_size=d.batch_size, seed=config.seed, shuffle=training,
        num_epochs=None if training else 1, data_dir=d.data_dir or None,
        drop_remainder=training,
    )  # fmt: skip


def num_segments(config) -> int:
    """M: deep-supervision segments (1 for the non-recurrent Transformer)."""
    return 1 if config.model.kind == "transformer" else int(config.model.segments)


def make_steps(model, tx, q_weight: float, q_continue: bool = False):
    """Jitted (train_segment, eval_segment) functions.

    With `q_continue`, each training segment also runs the next segment forward (no gradient)
    from its detached carry to form the Q-learning target of the continue action
    (`q_continue_target`); that costs one more forward pass per segment.
    `train_segment(params, opt_state, carry, batch, is_last)`: `is_last` marks segment M."""

    def loss_fn(params, carry, batch, is_last, active):
        carry, logits, q = model.apply({"params": params}, batch["inputs"], carry)
        target = None
        if q_continue:
            sg = jax.lax.stop_gradient
            _, _, q_next = model.apply({"params": sg(params)}, batch["inputs"], sg(carry))
            target = q_continue_target(q_next, is_last)
        loss, metrics = segment_loss(logits, q, batch, q_weight, target, active)
        return loss, (carry, metrics, q)

    @jax.jit
    def train_segment(params, opt_state, carry, batch, is_last=False, active=None):
        """One segment's update; returns (params, opt_state, detached carry, metrics, q [b, 2]).
        `active` ([b] 0/1, optional) drops examples that halted earlier from the loss."""
        (_, (carry, metrics, q)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, carry, batch, is_last, active
        )
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, jax.lax.stop_gradient(carry), metrics, q

    @jax.jit
    def eval_segment(params, carry, inputs):
        """Returns (carry, predictions, halt probability). With a trained continue value the
        model halts when Q_halt > Q_continue, reported as a probability above 0.5."""
        carry, logits, q = model.apply({"params": params}, inputs, carry)
        halt = q[:, 0] - q[:, 1] if q_continue else q[:, 0]
        return carry, jnp.argmax(logits, -1), jax.nn.sigmoid(halt)

    return train_segment, eval_segment


def train_batch(train_segment, params, opt_state, batch, init_carry, segments, halting=None):
    """Deep supervision on one batch: up to `segments` (M_max) segments, an update after each.

    Args:
      train_segment: from `make_steps`.
      init_carry: the zero carry for this batch.
      halting: None to run all M_max segments for every example; else
        `(min_segments_B, q_continue)`: training-time ACT, where an example stops (drops out of
        the loss) once `training_halt` says so, never before its M_min segments, and the batch
        ends when every example has halted.

    Returns:
      (params, opt_state, last segment's metrics, int [b] segments each example trained).
    """
    b = batch["inputs"].shape[0]
    carry, halted = init_carry, np.zeros(b, bool)
    used = np.zeros(b, np.int64)
    for m in range(segments):
        active = None if halting is None else jnp.asarray(~halted, jnp.float32)
        params, opt_state, carry, metrics, q = train_segment(
            params, opt_state, carry, batch, jnp.asarray(m == segments - 1), active
        )
        used += ~halted
        if halting is not None:
            min_segments, q_continue = halting
            halted |= training_halt(q, m + 1, min_segments, segments, q_continue)
            if halted.all():
                break
    return params, opt_state, metrics, used


def evaluate(eval_segment, params, batches, segments: int) -> dict:
    """Cell and exact accuracy after M segments, and with Q-head halting."""
    cells = exact = act_exact = act_segs = count = cell_count = 0.0
    for batch in batches:
        inputs, targets, mask = (np.asarray(batch[k]) for k in ("inputs", "targets", "mask"))
        carry, halted, act_pred = None, np.zeros(len(inputs), bool), None
        used = np.full(len(inputs), segments)
        for m in range(segments):
            carry, pred, p_halt = eval_segment(params, carry, inputs)
            pred, p_halt = np.asarray(pred), np.asarray(p_halt)
            act_pred = pred.copy() if act_pred is None else act_pred
            fresh = ~halted
            act_pred[fresh] = pred[fresh]
            stop = fresh & (p_halt > 0.5)
            used[stop] = m + 1
            halted |= stop
        right = (pred == targets) | (mask == 0)
        act_right = (act_pred == targets) | (mask == 0)
        cells += float(((pred == targets) * mask).sum())
        cell_count += float(mask.sum())
        exact += float(right.all(-1).sum())
        act_exact += float(act_right.all(-1).sum())
        act_segs += float(used.sum())
        count += len(inputs)
    return {
        "cell_accuracy": cells / max(cell_count, 1),
        "exact_accuracy": exact / max(count, 1),
        "act_exact_accuracy": act_exact / max(count, 1),
        "act_mean_segments": act_segs / max(count, 1),
    }


def run(config, log=print) -> dict:
    """Train `config` and return test metrics (plus parameter count and seconds)."""
    info = prepare_data(config)
    model = make_model(config, info["vocab_size"])
    segments = num_segments(config)
    tx = make_optimizer(config.optimizer, config.train.num_steps * segments)
    q_continue = bool(config.model.get("q_continue", False))
    train_segment, eval_segment = make_steps(model, tx, config.model.q_weight, q_continue)
    it = loader(config, "train", True)
    first = next(it)
    params = model.init(jax.random.PRNGKey(config.seed), jnp.asarray(first["inputs"]))["params"]
    n_params = sum(x.size for x in jax.tree_util.tree_leaves(params))
    opt_state = tx.init(params)
    # Training-time ACT (off by default): with `explore_prob` = epsilon, M_min is drawn per
    # example from {2..M_max}, else 1 (`draw_min_segments`).
    train_halting = bool(config.model.get("train_halting", False))
    explore_prob = float(config.model.get("explore_prob", 0.0))
    rng = np.random.default_rng(config.seed)
    start, trained_segments, trained_examples = time.time(), 0, 0
    batch = first
    for step in range(config.train.num_steps):
        batch = {k: jnp.asarray(v) for k, v in batch.items()}
        b = batch["inputs"].shape[0]
        halting = None
        if train_halting and segments > 1:
            halting = (draw_min_segments(rng, b, segments, explore_prob), q_continue)
        carry = model.init_carry(*batch["inputs"].shape)
        params, opt_state, metrics, used = train_batch(
            train_segment, params, opt_state, batch, carry, segments, halting
        )
        trained_segments, trained_examples = trained_segments + used.sum(), trained_examples + b
        if config.train.log_every and (step + 1) % config.train.log_every == 0:
            shown = {k: round(float(v), 4) for k, v in metrics.items()}
            log(f"step {step + 1}: {shown}, mean train segments {used.mean():.2f}")
        batch = next(it)
    result = evaluate(eval_segment, params, loader(config, "test", False), segments)
    result.update(
        params=int(n_params),
        seconds=round(time.time() - start, 1),
        train_mean_segments=round(float(trained_segments / max(trained_examples, 1)), 3),
    )
    return result
