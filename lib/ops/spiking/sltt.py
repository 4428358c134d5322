"""Training through time: BPTT, truncated BPTT, and SLTT / SLTT-K (Meng et al. 2023, "Towards Memory- and Time-Efficient Backpropagation for Training Spiking Neural Networks").

All four take the same inputs and return `(total_loss, grads)`:

- `step_loss(params, state, x_t) -> (loss_t, new_state)`: one time step of the network
  (every layer) and its loss at that step; `state` is any pytree (e.g. membranes);
- `params`: the pytree to differentiate; `state0`: the initial state;
- `xs`: a pytree of arrays with time on axis 1 ([B, L, ...]), read one step at a time
  with a dynamic slice (no transposed copy, so nothing of size L is materialised).

The total loss is `sum_t loss_t`. The methods differ in which gradient paths they keep:

- `bptt_value_and_grad`: everything (autodiff through the whole `lax.scan`); its memory
  holds every step's residuals, so it grows linearly in L;
- `tbptt_value_and_grad(truncation=K)`: full BPTT inside windows of K steps, the state passed
  between windows with its gradient stopped; gradients accumulated window by window, so the
  memory grows with K, not L;
- `sltt_value_and_grad`: SLTT drops the temporal term: the state that enters each step is
  detached, so `dL/dW = sum_t dloss_t/dW |_{state_{t-1} fixed}`; the gradient is computed
  online inside the forward scan and accumulated, so memory is constant in L;
- `sltt_value_and_grad(k=K, rng=...)`: SLTT-K, the instantaneous gradient at only K steps
  drawn at random without replacement (`sltt_k_mask`); the other steps run forward only.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

StepLoss = Callable  # (params, state, x_t) -> (loss_t, new_state)


def _length(xs) -> int:
    lengths = {leaf.shape[1] for leaf in jax.tree.leaves(xs)}
    if len(lengths) != 1:
        raise ValueError(f"every leaf of `xs` needs the same length on axis 1, got {lengths}")
    return lengths.pop()


def _at(xs, t):
    """xs[:, t] for every leaf."""
    return jax.tree.map(lambda x: lax.dynamic_index_in_dim(x, t, 1, keepdims=False), xs)


def _window(xs, t, size):
    """xs[:, t : t + size] for every leaf."""
    return jax.tree.map(lambda x: lax.dynamic_slice_in_dim(x, t, size, 1), xs)


def _zeros_like_f32(params):
    return jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.result_type(p, jnp.float32)), params)


def _add(acc, g):
    return jax.tree.map(lambda a, b: a + b.astype(a.dtype), acc, g)


def _cast_like(acc, params):
    return jax.tree.map(lambda a, p: a.astype(p.dtype), acc, params)


def unroll_loss(step_loss: StepLoss, params, state0, xs):
    """Total loss `sum_t loss_t` and final state: the forward pass every method shares."""

    def body(carry, t):
        state, total = carry
        loss_t, state = step_loss(params, state, _at(xs, t))
        return (state, total + jnp.float32(loss_t)), None

    (state, total), _ = lax.scan(body, (state0, jnp.float32(0.0)), jnp.arange(_length(xs)))
    return total, state


def bptt_value_and_grad(step_loss: StepLoss, params, state0, xs):
    """Full backpropagation through time. Returns `(total_loss, grads)`."""
    return jax.value_and_grad(lambda p: unroll_loss(step_loss, p, state0, xs)[0])(params)


def tbptt_value_and_grad(step_loss: StepLoss, params, state0, xs, *, truncation: int):
    """Truncated BPTT over windows of `truncation` steps (L must be a multiple of it).

    Returns `(total_loss, grads)`; `truncation=L` is BPTT and `truncation=1` is SLTT.
    """
    length = _length(xs)
    if truncation < 1 or length % truncation:
        raise ValueError(f"truncation={truncation} must be >= 1 and divide the length {length}")

    def window_loss(p, state, xs_window):
        return unroll_loss(step_loss, p, state, xs_window)

    grad_fn = jax.value_and_grad(window_loss, has_aux=True)

    def body(carry, w):
        state, total, acc = carry
        (loss_w, state), g = grad_fn(params, lax.stop_gradient(state), _window(xs, w, truncation))
        return (state, total + loss_w, _add(acc, g)), None

    starts = jnp.arange(0, length, truncation)
    init = (state0, jnp.float32(0.0), _zeros_like_f32(params))
    (_, total, acc), _ = lax.scan(body, init, starts)
    return total, _cast_like(acc, params)


def sltt_k_mask(rng, length: int, k: int):
    """Bool [length] with exactly `k` True steps drawn uniformly without replacement."""
    if not 1 <= k <= length:
        raise ValueError(f"k={k} must be in [1, {length}]")
    order = jax.random.permutation(rng, length)
    return jnp.zeros((length,), bool).at[order[:k]].set(True)


def sltt_value_and_grad(step_loss: StepLoss, params, state0, xs, *, k=None, rng=None):
    """SLTT (k=None) or SLTT-K: online gradients with the temporal path detached.

    Args:
      step_loss, params, state0, xs: see the module docstring.
      k: for SLTT-K, the number of steps at which to backpropagate; None means all steps.
      rng: PRNG key choosing those steps (required with `k`).

    Returns:
      `(total_loss, grads)`: the loss over all steps, and the sum of the instantaneous
      gradients (every step, or the K chosen ones) with each step's input state held fixed.
    """
    length = _length(xs)
    if k is not None and rng is None:
        raise ValueError("SLTT-K (k given) needs an `rng` to choose the steps")
    mask = jnp.ones((length,), bool) if k is None else sltt_k_mask(rng, length, k)
    grad_fn = jax.value_and_grad(step_loss, has_aux=True)

    def with_grad(params, state, x_t):
        (loss_t, new_state), g = grad_fn(params, state, x_t)
        g = jax.tree.map(lambda a, z: a.astype(z.dtype), g, _zeros_like_f32(params))
        return jnp.float32(loss_t), new_state, g

    def forward_only(params, state, x_t):
        loss_t, new_state = step_loss(params, state, x_t)
        return jnp.float32(loss_t), new_state, _zeros_like_f32(params)

    def body(carry, t):
        state, total, acc = carry
        state = lax.stop_gradient(state)
        x_t = _at(xs, t)
        if k is None:
            loss_t, state, g = with_grad(params, state, x_t)
        else:
            loss_t, state, g = lax.cond(mask[t], with_grad, forward_only, params, state, x_t)
        return (state, total + loss_t, _add(acc, g)), None

    init = (state0, jnp.float32(0.0), _zeros_like_f32(params))
    (_, total, acc), _ = lax.scan(body, init, jnp.arange(length))
    return total, _cast_like(acc, params)


def temp_bytes(fn, *args) -> int:
    """Temporary (scratch) memory in bytes of `jax.jit(fn)(*args)` from XLA's compiled memory
    analysis; `None` where the backend does not report it."""
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    return None if analysis is None else int(analysis.temp_size_in_bytes)
