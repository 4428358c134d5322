"""Hierarchical Reasoning Model (Wang et al. 2025): deep-supervision train step, ACT evaluation.

Both are step factories for `lib.train.loop.train_and_evaluate(make_train_step=...,
make_eval_step=...)`, so HRM trains on the shared loop (progress bar, metrics, checkpoints).

Train step: each batch runs up to M segments (`lax.scan`); after each one the loss is taken,
the optimizer steps (`state.apply_gradients`: M updates per batch) and the carried (z_H, z_L)
is detached before the next segment (deep supervision). The Q head's halt logit learns "is
this segment's answer right"; with `q_continue` its continue logit also learns the Q-learning
target of HRM's ACT (`research.hrm.model.q_continue_target`), which costs one more forward pass
per segment. With `train_halting` an example stops (drops out of the loss) once
`training_halt` says so, never before its randomized M_min (`draw_min_segments`); once every
example of the batch has halted the remaining segments make no update.

Eval step: M segments forward; an example halts at the first segment whose Q head says halt
(sigmoid(q_halt) > 0.5, or Q_halt > Q_continue with the continue target), or at M: accuracy
after M segments and with halting.
"""

import jax
import jax.numpy as jnp
import optax

from lib.train.state import step_rng
from research.hrm.model import (
    draw_min_segments,
    q_continue_target,
    segment_loss,
    training_halt,
)


def run_segments(segment_update, state, carry, segments: int, min_segments=None, q_continue=False):
    """Deep supervision on one batch: up to `segments` (M_max) segments, an update after each.

    Args:
      segment_update: `(state, carry, is_last, active) -> (state, carry, metrics, q [b, 2])`,
        one segment's forward, loss and update (`active`: [b] float 1/0, or None).
      state, carry: the train state and the batch's zero (z_H, z_L).
      segments: M_max.
      min_segments: None to run all M_max segments for every example; else int [b] M_min
        for training-time ACT (`training_halt`): an example leaves the loss once it halts, and
        segments after every example has halted change nothing.
      q_continue: the halting rule (see `training_halt`).

    Returns:
      `(state, metrics of the last segment that ran, used int [b] segments each example
      trained, active [M, b] float: which examples each segment trained)`.
    """
    b = carry[0].shape[0]
    halting = min_segments is not None

    def body(loop, m):
        state, carry, halted, used, last = loop
        active = (~halted).astype(jnp.float32)
        new_state, carry, metrics, q = segment_update(
            state, carry, m == segments - 1, active if halting else None
        )
        ran = ~jnp.all(halted)
        state = jax.tree.map(lambda new, old: jnp.where(ran, new, old), new_state, state)
        last = jax.tree.map(lambda new, old: jnp.where(ran, new, old), metrics, last)
        used = used + (~halted).astype(jnp.int32)
        if halting:
            halted = halted | training_halt(q, m + 1, min_segments, segments, q_continue)
        return (state, carry, halted, used, last), active

    # The first segment always runs: its metrics' structure seeds the "last metrics" slot.
    shapes = jax.eval_shape(lambda s, c: segment_update(s, c, segments == 1, None)[2], state, carry)
    last = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    init = (state, carry, jnp.zeros(b, bool), jnp.zeros(b, jnp.int32), last)
    (state, _, _, used, last), active = jax.lax.scan(body, init, jnp.arange(segments))
    return state, last, used, active


def make_deep_supervision_step(
    segments: int,
    q_weight: float,
    q_continue: bool = False,
    train_halting: bool = False,
    explore_prob: float = 0.0,
):
    """A `make_train_step` factory for `lib.train.loop`: `(model, loss_fn, schedule) ->
    train_step(state, batch)` running `run_segments` on `batch` (`inputs`, `targets`, `mask`).

    Metrics: the last segment's `loss`, `ce`, `cell_accuracy`, `exact_accuracy`, `halt_bce`
    (and `continue_bce`), its `grad_norm`, the `learning_rate`, and `mean_segments` (segments
    per example this batch trained).
    """

    def factory(model, loss_fn, schedule):
        del loss_fn  # one segment's loss is `segment_loss` on a carried state, below

        def segment_update(state, carry, is_last, active, batch):
            def compute(params):
                new_carry, logits, q = model.apply({"params": params}, batch["inputs"], carry)
                target = None
                if q_continue:
                    sg = jax.lax.stop_gradient
                    _, _, q_next = model.apply(
                        {"params": sg(params)}, batch["inputs"], sg(new_carry)
                    )
                    target = q_continue_target(q_next, is_last)
                loss, metrics = segment_loss(logits, q, batch, q_weight, target, active)
                return loss, (new_carry, dict(metrics, loss=loss), q)

            (_, (carry, metrics, q)), grads = jax.value_and_grad(compute, has_aux=True)(
                state.params
            )
            metrics["grad_norm"] = optax.tree.norm(grads)
            if schedule is not None:
                metrics["learning_rate"] = schedule(state.step)
            return state.apply_gradients(grads), jax.lax.stop_gradient(carry), metrics, q

        def train_step(state, batch):
            b, length = batch["inputs"].shape
            min_segments = None
            if train_halting and segments > 1:
                min_segments = draw_min_segments(step_rng(state), b, segments, explore_prob)
            state, metrics, used, _ = run_segments(
                lambda s, c, last, act: segment_update(s, c, last, act, batch),
                state,
                model.init_carry(b, length),
                segments,
                min_segments,
                q_continue,
            )
            return state, dict(metrics, mean_segments=jnp.mean(used.astype(jnp.float32)))

        return train_step

    return factory


def make_act_eval_step(segments: int, q_continue: bool = False):
    """A `make_eval_step` factory for `lib.train.loop`: `(model, loss_fn) ->
    eval_step(state, batch)` with `cell_accuracy` (masked cells right after M segments, over
    this batch's masked cells), `exact_accuracy` (puzzles whose masked cells are all right),
    `act_exact_accuracy` (the same for the answer at each example's halting segment),
    `act_mean_segments` and `count` (examples). A batch may hold `weight` [b] (0 for padding
    examples, which then count nowhere). With several eval batches the loop weights each
    batch's means by its examples."""

    def factory(model, loss_fn):
        del loss_fn

        def eval_step(state, batch):
            inputs, targets, mask = batch["inputs"], batch["targets"], batch["mask"]
            b = inputs.shape[0]
            carry, halted = None, jnp.zeros(b, bool)
            used = jnp.full(b, segments, jnp.float32)
            act_pred = None
            for m in range(segments):
                carry, logits, q = model.apply({"params": state.params}, inputs, carry)
                pred = jnp.argmax(logits, -1)
                p_halt = jax.nn.sigmoid(q[:, 0] - q[:, 1] if q_continue else q[:, 0])
                fresh = ~halted
                act_pred = pred if act_pred is None else jnp.where(fresh[:, None], pred, act_pred)
                stop = fresh & (p_halt > 0.5)
                used = jnp.where(stop, m + 1.0, used)
                halted = halted | stop
            w = batch.get("weight", jnp.ones(b, jnp.float32))
            count = jnp.maximum(jnp.sum(w), 1.0)
            right = ((pred == targets) | (mask == 0)).all(-1)
            act_right = ((act_pred == targets) | (mask == 0)).all(-1)
            cell_mask = mask * w[:, None]
            cells = jnp.sum((pred == targets) * cell_mask) / jnp.maximum(jnp.sum(cell_mask), 1.0)
            return state, {
                "cell_accuracy": cells,
                "exact_accuracy": jnp.sum(right * w) / count,
                "act_exact_accuracy": jnp.sum(act_right * w) / count,
                "act_mean_segments": jnp.sum(used * w) / count,
                "count": jnp.sum(w),
            }

        return eval_step

    return factory
