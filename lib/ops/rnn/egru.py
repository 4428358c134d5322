"""Event-based GRU (EGRU; Subramoney et al., ICLR 2023) with sparse, thresholded outputs.

A GRU whose units emit an event only when their internal state crosses a threshold, and whose
recurrence sees only those events (so most of `y_{t-1} W_hh` can be skipped on event-based
hardware such as SpiNNaker 2, paper 43):

    r, z = sigmoid(x W_r + y_{t-1} U_r + b),  sigmoid(x W_z + y_{t-1} U_z + b)
    n    = tanh(x W_n + b_in + r * (y_{t-1} U_n + b_hn))
    c_t  = (1 - z) * n + z * c_{t-1}       (internal state, as a GRU's h)
    e_t  = spike(c_t - threshold)          (Heaviside forward, surrogate gradient backward)
    y_t  = e_t * c_t                       (sparse output; zero where no event)
    c_t <- c_t - e_t * threshold           (reset by subtraction)

Weights as in `lib.ops.rnn.cells.gru` (`w_ih: [d_in, 3h]`, `w_hh: [h, 3h]`, gate order `r, z, n`),
`threshold: [h]` (positive). The surrogate comes from `lib.ops.spiking.spike`; the default
triangle with `gamma=0.7` is the EGRU paper's "dampened" pseudo-derivative.
Forms: "ref" (projection inside the scan) and "scan" (hoisted input projection); "auto" =
"scan". State: `EGRUState(c, y)`, each `[b, h]`.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lib.ops._checks import check_floats, check_method, check_rank, check_shape
from lib.ops.rnn.cells import resolve_method
from lib.ops.spiking.core import spike_fn

METHODS = ("auto", "ref", "scan")
DEFAULT_SURROGATE = {"surrogate": "triangle", "alpha": 1.0, "gamma": 0.7}


class EGRUState(NamedTuple):
    """EGRU carry: internal state `c: [b, h]` (after reset) and last output `y: [b, h]`."""

    c: jax.Array
    y: jax.Array


def egru_init_state(batch_size: int, hidden: int, dtype=jnp.float32) -> EGRUState:
    """Zero `EGRUState` for `batch_size` sequences of `hidden` units."""
    zeros = jnp.zeros((batch_size, hidden), dtype)
    return EGRUState(zeros, zeros)


def _fire(surrogate) -> Callable:
    if surrogate is None:
        params = dict(DEFAULT_SURROGATE)
        return spike_fn(params.pop("surrogate"), **params)
    if isinstance(surrogate, str):
        return spike_fn(surrogate)
    return surrogate


def egru_cell(
    state: EGRUState,
    xw_t: jax.Array,
    w_hh: jax.Array,
    b_hh: jax.Array | None,
    threshold: jax.Array,
    *,
    fire: Callable,
    gate_fn: Callable = jax.nn.sigmoid,
    cell_fn: Callable = jnp.tanh,
    carry_fn: Callable[[EGRUState], EGRUState] | None = None,
) -> tuple[EGRUState, jax.Array]:
    """One EGRU step from the projected input `xw_t = x_t W_ih + b_ih: [b, 3h]`; `carry_fn`
    (e.g. a quantizer; None: none) is applied to the new `EGRUState`.

    Returns:
      `(new_state, y_t)` with the sparse output `y_t: [b, h]` (the carried `y`).
    """
    dtype = state.c.dtype
    hw = state.y @ w_hh.astype(dtype)
    if b_hh is not None:
        hw = hw + b_hh.astype(dtype)
    xr, xz, xn = jnp.split(xw_t.astype(dtype), 3, axis=-1)
    hr, hz, hn = jnp.split(hw, 3, axis=-1)
    r = gate_fn(xr + hr)
    z = gate_fn(xz + hz)
    n = cell_fn(xn + r * hn)
    c = (1.0 - z) * n + z * state.c
    thr = threshold.astype(dtype)
    e = fire(c - thr)
    y = e * c
    state = EGRUState(c - e * thr, y)
    if carry_fn is not None:
        state = carry_fn(state)
    return state, state.y


def egru_step(state, x_t, w_ih, w_hh, b_ih, b_hh, threshold, *, surrogate=None, **acts):
    """Streaming EGRU: `(state, x_t: [b, d_in]) -> (state, y_t: [b, h])`."""
    xw = x_t.astype(state.c.dtype) @ w_ih.astype(state.c.dtype)
    if b_ih is not None:
        xw = xw + b_ih.astype(state.c.dtype)
    return egru_cell(state, xw, w_hh, b_hh, threshold, fire=_fire(surrogate), **acts)


def egru(
    x: jax.Array,
    w_ih: jax.Array,
    w_hh: jax.Array,
    b_ih: jax.Array | None,
    b_hh: jax.Array | None,
    threshold: jax.Array,
    *,
    initial_state: EGRUState | None = None,
    return_final_state: bool = False,
    surrogate: str | Callable | None = None,
    gate_fn: Callable = jax.nn.sigmoid,
    cell_fn: Callable = jnp.tanh,
    carry_fn: Callable[[EGRUState], EGRUState] | None = None,
    method: str = "auto",
):
    """EGRU over axis 1.

    Args:
      x: inputs `[b, l, d_in]`.
      w_ih, w_hh, b_ih, b_hh: GRU weights `[d_in, 3h]`, `[h, 3h]`, biases `[3h]` or None.
      threshold: per-unit thresholds `[h]` (or a scalar), positive.
      initial_state: `EGRUState(c, y)`; zeros when None.
      return_final_state: also return the final `EGRUState`.
      surrogate: a `lib.ops.spiking.SURROGATES` name, a callable `x -> spikes`, or None for
        the EGRU paper's triangle (`alpha=1`, `gamma=0.7`).
      gate_fn, cell_fn: swappable gate and candidate nonlinearities.
      carry_fn: applied to the `EGRUState` after every step (e.g. a fixed-point quantizer).
      method: "ref", "scan" or "auto".

    Returns:
      sparse outputs `y: [b, l, h]` in `x.dtype` (and the final state).
    """
    check_method(method, METHODS)
    check_floats(x=x, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    check_rank("x", x, 3)
    method = resolve_method(method, x.shape[1])
    check_rank("w_hh", w_hh, 2)
    hidden = w_hh.shape[0]
    check_shape("w_ih", w_ih, (x.shape[-1], 3 * hidden))
    check_shape("w_hh", w_hh, (hidden, 3 * hidden))
    for name, b in (("b_ih", b_ih), ("b_hh", b_hh)):
        if b is not None:
            check_shape(name, b, (3 * hidden,))
    threshold = jnp.broadcast_to(jnp.asarray(threshold), (hidden,))
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    bsz = x.shape[0]
    if initial_state is None:
        initial_state = egru_init_state(bsz, hidden, dtype)
    else:
        check_shape("initial_state.c", initial_state.c, (bsz, hidden))
        check_shape("initial_state.y", initial_state.y, (bsz, hidden))
        initial_state = EGRUState(*(s.astype(dtype) for s in initial_state))
    fire = _fire(surrogate)
    cell = lambda s, xw_t: egru_cell(
        s, xw_t, w_hh, b_hh, threshold, fire=fire, gate_fn=gate_fn, cell_fn=cell_fn,
        carry_fn=carry_fn,
    )  # fmt: skip
    bias = 0 if b_ih is None else b_ih.astype(dtype)
    xs = jnp.swapaxes(x, 0, 1)
    if method == "ref":
        step = lambda s, x_t: cell(s, x_t.astype(dtype) @ w_ih.astype(dtype) + bias)
        final, y = jax.lax.scan(step, initial_state, xs)
    else:
        xw = jnp.einsum("lbd,dk->lbk", xs.astype(dtype), w_ih.astype(dtype)) + bias
        final, y = jax.lax.scan(cell, initial_state, xw)
    y = jnp.swapaxes(y, 0, 1).astype(x.dtype)
    return (y, final) if return_final_state else y


def egru_ref(x, w_ih, w_hh, b_ih, b_hh, threshold, **kwargs):
    """The definition of `egru` (input projection inside the `lax.scan`)."""
    return egru(x, w_ih, w_hh, b_ih, b_hh, threshold, method="ref", **kwargs)


def activity_sparsity(y: jax.Array) -> jax.Array:
    """Fraction of outputs that are exactly zero (no event): the EGRU paper's sparsity metric."""
    return jnp.mean((y == 0).astype(jnp.float32))
