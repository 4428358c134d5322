"""Spiking neuron models over time: IF, PLIF (Fang et al. 2021), ALIF (Bellec et al. 2018), synaptic and recurrent LIF.

Every neuron has an explicit state (a NamedTuple), a step form `(state, x_t) -> (state, s_t)`,
an `*_init_state`, and a full form over axis 1 (a `lax.scan` of the step) with
`initial_state` / `return_final_state`. `lif_no_reset` is the time-parallel LIF: without a
reset the membrane is the linear recurrence `v_t = beta v_{t-1} + I_t`, computed by
`lib.ops.scan.linear_recurrence`, and spikes are read off it afterwards.

Shape letters: B batch, L time, N (any trailing) neuron axes; H hidden units (recurrent LIF).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from lib.ops._checks import check_rank, check_shape
from lib.ops.spiking.core import _apply_reset, _check_reset, lif, lif_step, spike_fn


def _scan_over_time(step, state0, xs_BxL):
    """Run `step(state, x_t) -> (state, y_t)` over axis 1 of every leaf of `xs_BxL`."""
    xs_LxB = jax.tree.map(lambda x: jnp.moveaxis(x, 1, 0), xs_BxL)
    state, ys_LxB = lax.scan(step, state0, xs_LxB)
    return state, jnp.moveaxis(ys_LxB, 0, 1)


def _finish(spikes_f32, dtype, state, return_final_state):
    spikes = spikes_f32.astype(dtype)
    return (spikes, state) if return_final_state else spikes


def _check_current(current):
    check_rank("current", current, range(2, 8))
    if not jnp.issubdtype(current.dtype, jnp.floating):
        raise TypeError(f"`current` must be floating point, got {current.dtype}")


# ------------------------------------------------------------------ IF and PLIF


def if_neuron(current, *, threshold=1.0, reset="subtract", v0=None, **kwargs):
    """Integrate-and-fire (no leak): `lif` with beta = 1. Same arguments and returns as `lif`."""
    return lif(current, beta=1.0, threshold=threshold, reset=reset, v0=v0, **kwargs)


def if_step(v, current_t, *, threshold=1.0, reset="subtract", **kwargs):
    """One IF step `(v, I_t) -> (v, s_t)`: `lif_step` with beta = 1."""
    return lif_step(v, current_t, beta=1.0, threshold=threshold, reset=reset, **kwargs)


def plif_decay(decay_logit):
    """PLIF's learnable decay factor k = sigmoid(w) in (0, 1) (membrane keeps 1 - k)."""
    return jax.nn.sigmoid(jnp.asarray(decay_logit, jnp.float32))


def plif(current, *, decay_logit, threshold=1.0, reset="zero", v0=None, **kwargs):
    """Parametric LIF (Fang et al. 2021): `v_t = v_{t-1} + k (I_t - v_{t-1})`, k = sigmoid(w).

    Equivalent to `lif(k * I, beta=1 - k)`; `decay_logit` (w, scalar or per neuron [*N]) is
    differentiable and is what a module learns. The paper uses the hard ("zero") reset.
    Other keyword arguments and the returns are as in `lif`.
    """
    k = plif_decay(decay_logit)
    return lif(current * k.astype(current.dtype), beta=1.0 - k, threshold=threshold,
               reset=reset, v0=v0, **kwargs)  # fmt: skip


def plif_step(v, current_t, *, decay_logit, threshold=1.0, reset="zero", **kwargs):
    """One PLIF step `(v, I_t) -> (v, s_t)`; see `plif` and `lif_step`."""
    k = plif_decay(decay_logit)
    return lif_step(v, k * current_t, beta=1.0 - k, threshold=threshold, reset=reset, **kwargs)


# ------------------------------------------------------------------ adaptive LIF


class ALIFState(NamedTuple):
    """State of the adaptive LIF: membrane `v` and threshold adaptation `a`, both [B, *N]."""

    v: jax.Array
    a: jax.Array


def alif_init_state(batch_size: int, neurons, dtype=jnp.float32) -> ALIFState:
    neurons = (neurons,) if isinstance(neurons, int) else tuple(neurons)
    z = jnp.zeros((batch_size, *neurons), dtype)
    return ALIFState(z, z)


def alif_step(
    state: ALIFState,
    current_t,
    *,
    beta,
    rho,
    gamma,
    threshold=1.0,
    reset="subtract",
    surrogate: str | Callable = "fast_sigmoid",
    detach_reset=False,
):
    """One adaptive-LIF step (Bellec et al. 2018, LSNN):

        v_t = beta v_{t-1} + I_t,   A_t = threshold + gamma a_{t-1},   s_t = H(v_t - A_t),
        v_t <- reset by A_t,        a_t = rho a_{t-1} + (1 - rho) s_t.

    Args:
      state: `ALIFState` (v, a), each [B, *N].
      current_t: [B, *N].
      beta, rho: membrane and adaptation decays; gamma: adaptation strength (Bellec's beta).

    Returns:
      `(state, s_t)`.
    """
    _check_reset(reset)
    fire = spike_fn(surrogate)
    u = beta * state.v + current_t
    adaptive_threshold = threshold + gamma * state.a
    s = fire(u - adaptive_threshold)
    v = _apply_reset(u, s, adaptive_threshold, reset, detach_reset)
    a = rho * state.a + (1.0 - rho) * s
    return ALIFState(v, a), s


def alif(current, *, beta, rho, gamma, initial_state=None, return_final_state=False, **kwargs):
    """Adaptive LIF over axis 1: spikes [B, L, *N] (and the final `ALIFState` if asked).

    `current` is [B, L, *N]; other arguments as in `alif_step`.
    """
    _check_current(current)
    bsz, _, *neurons = current.shape
    state = alif_init_state(bsz, neurons) if initial_state is None else initial_state
    step = lambda st, i_t: alif_step(st, i_t, beta=beta, rho=rho, gamma=gamma, **kwargs)
    state, spikes = _scan_over_time(step, state, current.astype(jnp.float32))
    return _finish(spikes, current.dtype, state, return_final_state)


# ------------------------------------------------------------------ current-based (synaptic) LIF


class SynapticState(NamedTuple):
    """State of the current-based LIF: synaptic current `i` and membrane `v`, [B, *N]."""

    i: jax.Array
    v: jax.Array


def synaptic_init_state(batch_size: int, neurons, dtype=jnp.float32) -> SynapticState:
    neurons = (neurons,) if isinstance(neurons, int) else tuple(neurons)
    z = jnp.zeros((batch_size, *neurons), dtype)
    return SynapticState(z, z)


def synaptic_step(state: SynapticState, x_t, *, alpha, beta, threshold=1.0, reset="subtract",
                  surrogate: str | Callable = "fast_sigmoid", detach_reset=False):  # fmt: skip
    """One current-based LIF step: `i_t = alpha i_{t-1} + x_t`, `v_t = beta v_{t-1} + i_t`,
    then spike and reset as in `lif_step`. Returns `(SynapticState, s_t)`."""
    _check_reset(reset)
    fire = spike_fn(surrogate)
    i = alpha * state.i + x_t
    u = beta * state.v + i
    s = fire(u - threshold)
    return SynapticState(i, _apply_reset(u, s, threshold, reset, detach_reset)), s


def synaptic_lif(current, *, alpha, beta, initial_state=None, return_final_state=False, **kwargs):
    """Current-based (synaptic) LIF over axis 1; `current` [B, L, *N] -> spikes [B, L, *N]."""
    _check_current(current)
    bsz, _, *neurons = current.shape
    state = synaptic_init_state(bsz, neurons) if initial_state is None else initial_state
    step = lambda st, x_t: synaptic_step(st, x_t, alpha=alpha, beta=beta, **kwargs)
    state, spikes = _scan_over_time(step, state, current.astype(jnp.float32))
    return _finish(spikes, current.dtype, state, return_final_state)


# ------------------------------------------------------------------ recurrent LIF


class RecurrentLIFState(NamedTuple):
    """State of the recurrent LIF: membrane `v` and last spikes `s`, both [B, H]."""

    v: jax.Array
    s: jax.Array


def recurrent_lif_init_state(batch_size: int, hidden: int, dtype=jnp.float32):
    z = jnp.zeros((batch_size, hidden), dtype)
    return RecurrentLIFState(z, z)


def recurrent_lif_step(state: RecurrentLIFState, current_t, w_rec_HxH, *, beta, threshold=1.0,
                       reset="subtract", surrogate: str | Callable = "fast_sigmoid",
                       detach_reset=False):  # fmt: skip
    """One recurrent-LIF step: `I_t = x_t + s_{t-1} @ W_rec`, then `lif_step`.

    Args:
      state: `RecurrentLIFState` (v, s), [B, H].
      current_t: feed-forward current [B, H].
      w_rec_HxH: recurrent weights (row = presynaptic neuron).

    Returns:
      `(state, s_t)`.
    """
    _check_reset(reset)
    fire = spike_fn(surrogate)
    u = beta * state.v + current_t + state.s @ w_rec_HxH.astype(jnp.float32)
    s = fire(u - threshold)
    return RecurrentLIFState(_apply_reset(u, s, threshold, reset, detach_reset), s), s


def recurrent_lif(current, w_rec_HxH, *, beta, initial_state=None, return_final_state=False,
                  **kwargs):  # fmt: skip
    """Recurrently connected LIF layer over axis 1: `current` [B, L, H] -> spikes [B, L, H]."""
    check_rank("current", current, 3)
    hidden = current.shape[-1]
    check_shape("w_rec_HxH", w_rec_HxH, (hidden, hidden))
    state = (
        recurrent_lif_init_state(current.shape[0], hidden)
        if initial_state is None
        else initial_state
    )
    step = lambda st, i_t: recurrent_lif_step(st, i_t, w_rec_HxH, beta=beta, **kwargs)
    state, spikes = _scan_over_time(step, state, current.astype(jnp.float32))
    return _finish(spikes, current.dtype, state, return_final_state)


# ------------------------------------------------------------------ time-parallel, no reset


def leaky_integrator(current, *, beta, v0=None, method="auto", return_final_state=False):
    """Membrane of a non-spiking leaky integrator, `v_t = beta v_{t-1} + I_t` (a readout layer).

    Computed in parallel over time by `lib.ops.scan.linear_recurrence` (`method` as there).
    Returns v [B, L, *N] in float32 (and v_L [B, *N] if asked).
    """
    from lib.ops.scan.linear import linear_recurrence

    _check_current(current)
    beta = jnp.asarray(beta, jnp.float32)
    v0 = None if v0 is None else jnp.asarray(v0, jnp.float32)
    return linear_recurrence(
        beta, current.astype(jnp.float32), v0, method=method, return_final_state=return_final_state
    )


def lif_no_reset(current, *, beta, threshold=1.0, v0=None, surrogate="fast_sigmoid",
                 method="auto", return_final_state=False):  # fmt: skip
    """Time-parallel LIF without reset: equals `lif(..., reset="none")`.

    The membrane is `leaky_integrator(current, beta)` (parallel over time), and the spikes are
    `spike(v_t - threshold)` for all t at once. Returns spikes [B, L, *N] in `current`'s dtype
    (and the final membrane if asked).
    """
    v, v_final = leaky_integrator(current, beta=beta, v0=v0, method=method, return_final_state=True)
    spikes = spike_fn(surrogate)(v - jnp.asarray(threshold, jnp.float32))
    return _finish(spikes, current.dtype, v_final, return_final_state)
