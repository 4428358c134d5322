"""LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014) as pure functions.

Weights are passed in as arrays (gate order as in PyTorch, so checkpoints map one to one):

- LSTM: `w_ih: [d_in, 4h]`, `w_hh: [h, 4h]`, `b: [4h]`, gates `i, f, g, o`;
  `c_t = f * c_{t-1} + i * g`, `h_t = o * tanh(c_t)`.
- GRU: `w_ih: [d_in, 3h]`, `w_hh: [h, 3h]`, `b_ih, b_hh: [3h]`, gates `r, z, n`;
  `n_t = tanh(x W_in + b_in + r * (h W_hn + b_hn))`, `h_t = (1 - z) * n + z * h_{t-1}`.

Forms: `method="ref"` is the definition (input projection inside the `lax.scan`);
`method="scan"` hoists the input projection out of the loop as one `[b*l, d_in] x [d_in, kh]`
matmul, leaving only the `h W_hh` matmul in the recurrence ("auto" picks it). The cell
functions (`lstm_cell`, `gru_cell`) take the already-projected input and accept the gate and
candidate nonlinearities as arguments, so quantized or crossbar-emulated activations (paper 72)
can be swapped in without rewriting the recurrence, and an optional `carry_fn` applied to the
new carry after every step (a fixed-point state: `lib.nn.rnn.mixers`'s `quant=`); the full forms and
the step forms apply it alike, so step-by-step equals the full sequence. Carries are kept in
at least float32; outputs come back in the input dtype.
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from lib.ops._checks import check_floats, check_method, check_rank, check_shape, on_accelerator

Act = Callable[[jax.Array], jax.Array]
METHODS = ("auto", "ref", "scan")

# Measured on an idle 2-core CPU (benchmarks/results/mixers_cpu.md, 2026-11-23, b=4 d=h=64):
# the hoisted projection wins at L=256 (lstm 5.9 vs 6.8 ms) but loses from L=2048 on
# (lstm 64.6 vs 58.2, gru 57.4 vs 52.2, egru 67.7 vs 53.5 ms): its [b, l, k*h] buffer costs
# more memory traffic than the per-step matmul saves. Accelerators always hoist.
HOIST_MAX_LENGTH_CPU = 1024


def resolve_method(method: str, length: int) -> str:
    """The form `method="auto"` runs for a sequence of `length` steps ("ref" or "scan")."""
    check_method(method, METHODS)
    if method != "auto":
        return method
    return "scan" if on_accelerator() or length < HOIST_MAX_LENGTH_CPU else "ref"


class LSTMState(NamedTuple):
    """LSTM carry: hidden `h: [b, h]` and cell `c: [b, h]`."""

    h: jax.Array
    c: jax.Array


def _carry_dtype(dtype) -> jnp.dtype:
    return jnp.promote_types(dtype, jnp.float32)


def lstm_cell(
    state: LSTMState,
    xw_t: jax.Array,
    w_hh: jax.Array,
    *,
    gate_fn: Act = jax.nn.sigmoid,
    cell_fn: Act = jnp.tanh,
    out_fn: Act | None = None,
    carry_fn: Callable[[LSTMState], LSTMState] | None = None,
) -> tuple[LSTMState, jax.Array]:
    """One LSTM step from the projected input `xw_t = x_t W_ih + b: [b, 4h]`.

    Args:
      state: `LSTMState(h, c)`, each `[b, h]`.
      xw_t: input contribution to the four gates, `[b, 4h]`, order `i, f, g, o`.
      w_hh: recurrent weights `[h, 4h]`.
      gate_fn: nonlinearity of the gates `i, f, o` (sigmoid).
      cell_fn: nonlinearity of the candidate `g` (tanh).
      out_fn: nonlinearity applied to `c_t` for the output; defaults to `cell_fn`.
      carry_fn: applied to the new `LSTMState` (e.g. a quantizer); None: none.

    Returns:
      `(new_state, h_t)` with `h_t: [b, h]` (the carried `h`, after `carry_fn`).
    """
    out_fn = cell_fn if out_fn is None else out_fn
    z = xw_t.astype(state.h.dtype) + state.h @ w_hh.astype(state.h.dtype)
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c = gate_fn(f) * state.c + gate_fn(i) * cell_fn(g)
    h = gate_fn(o) * out_fn(c)
    state = LSTMState(h, c) if carry_fn is None else carry_fn(LSTMState(h, c))
    return state, state.h


def gru_cell(
    h_prev: jax.Array,
    xw_t: jax.Array,
    w_hh: jax.Array,
    b_hh: jax.Array | None = None,
    *,
    gate_fn: Act = jax.nn.sigmoid,
    cell_fn: Act = jnp.tanh,
    carry_fn: Act | None = None,
) -> tuple[jax.Array, jax.Array]:
    """One GRU step from the projected input `xw_t = x_t W_ih + b_ih: [b, 3h]`.

    Args:
      h_prev: previous hidden state `[b, h]`.
      xw_t: input contribution to `r, z, n`, `[b, 3h]`.
      w_hh: recurrent weights `[h, 3h]`; `b_hh: [3h]` recurrent bias (inside `r * (.)`).
      gate_fn, cell_fn: nonlinearities of the gates `r, z` and of the candidate `n`.
      carry_fn: applied to the new `h` (e.g. a quantizer); None: none.

    Returns:
      `(h_t, h_t)`, both `[b, h]`.
    """
    hw = h_prev @ w_hh.astype(h_prev.dtype)
    if b_hh is not None:
        hw = hw + b_hh.astype(h_prev.dtype)
    xr, xz, xn = jnp.split(xw_t.astype(h_prev.dtype), 3, axis=-1)
    hr, hz, hn = jnp.split(hw, 3, axis=-1)
    r = gate_fn(xr + hr)
    z = gate_fn(xz + hz)
    n = cell_fn(xn + r * hn)
    h = (1.0 - z) * n + z * h_prev
    if carry_fn is not None:
        h = carry_fn(h)
    return h, h


def _check_weights(x, w_ih, w_hh, k: int, biases: dict) -> int:
    check_floats(x=x, w_ih=w_ih, w_hh=w_hh, **biases)
    check_rank("x", x, 3)
    check_rank("w_ih", w_ih, 2)
    check_rank("w_hh", w_hh, 2)
    hidden = w_hh.shape[0]
    check_shape("w_ih", w_ih, (x.shape[-1], k * hidden))
    check_shape("w_hh", w_hh, (hidden, k * hidden))
    for name, b in biases.items():
        if b is not None:
            check_shape(name, b, (k * hidden,))
    return hidden


def _project(x, w_ih, b, dtype):
    """Hoisted input projection: one matmul over all time steps, `[b, l, kh]`."""
    xw = jnp.einsum("bld,dk->blk", x.astype(dtype), w_ih.astype(dtype))
    return xw if b is None else xw + b.astype(dtype)


def _scan_cell(cell, carry, x, w_ih, b, method, dtype):
    """`cell(carry, xw_t)` scanned over axis 1 of `x: [b, l, d_in]`: `(final carry, ys)`.

    "ref" projects `xw_t = x_t W_ih + b` inside the loop (the step form, scanned); "scan"
    hoists the projection out of it (one matmul for every step)."""
    if method == "ref":
        proj = lambda x_t: x_t.astype(dtype) @ w_ih.astype(dtype) + (0 if b is None else b)
        step, xs = (lambda c, x_t: cell(c, proj(x_t))), x
    else:
        step, xs = cell, _project(x, w_ih, b, dtype)
    carry, ys = jax.lax.scan(step, carry, jnp.swapaxes(xs, 0, 1))
    return carry, jnp.swapaxes(ys, 0, 1)


def lstm_step(state, x_t, w_ih, w_hh, b=None, **acts):
    """Streaming LSTM: `(state, x_t: [b, d_in]) -> (state, h_t: [b, h])`; `acts` are
    `lstm_cell`'s keywords (`gate_fn`, `cell_fn`, `out_fn`, `carry_fn`)."""
    check_floats(x_t=x_t, w_ih=w_ih, w_hh=w_hh, b=b)
    dtype = state.h.dtype
    xw = x_t.astype(dtype) @ w_ih.astype(dtype)
    if b is not None:
        xw = xw + b.astype(dtype)
    return lstm_cell(state, xw, w_hh, **acts)


def gru_step(h, x_t, w_ih, w_hh, b_ih=None, b_hh=None, **acts):
    """Streaming GRU: `(h: [b, h], x_t: [b, d_in]) -> (h, h_t)`; `acts` are `gru_cell`'s
    keywords (`gate_fn`, `cell_fn`, `carry_fn`)."""
    check_floats(h=h, x_t=x_t, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    xw = x_t.astype(h.dtype) @ w_ih.astype(h.dtype)
    if b_ih is not None:
        xw = xw + b_ih.astype(h.dtype)
    return gru_cell(h, xw, w_hh, b_hh, **acts)


def lstm(
    x: jax.Array,
    w_ih: jax.Array,
    w_hh: jax.Array,
    b: jax.Array | None = None,
    *,
    initial_state: LSTMState | None = None,
    return_final_state: bool = False,
    gate_fn: Act = jax.nn.sigmoid,
    cell_fn: Act = jnp.tanh,
    out_fn: Act | None = None,
    carry_fn: Callable[[LSTMState], LSTMState] | None = None,
    method: str = "auto",
):
    """LSTM over axis 1.

    Args:
      x: inputs `[b, l, d_in]`.
      w_ih, w_hh, b: weights `[d_in, 4h]`, `[h, 4h]`, bias `[4h]` (gate order `i, f, g, o`).
      initial_state: `LSTMState(h, c)` with `[b, h]` arrays; zeros when None.
      return_final_state: also return the final `LSTMState`.
      gate_fn, cell_fn, out_fn: swappable nonlinearities (see `lstm_cell`).
      carry_fn: applied to the carry after every step (e.g. a fixed-point quantizer).
      method: "ref" (projection inside the scan), "scan" (hoisted projection), "auto".

    Returns:
      `h: [b, l, h]` in `x.dtype`, and the final state when `return_final_state`.
    """
    method = resolve_method(method, x.shape[1] if x.ndim >= 2 else 0)
    hidden = _check_weights(x, w_ih, w_hh, 4, {"b": b})
    dtype = _carry_dtype(x.dtype)
    bsz = x.shape[0]
    if initial_state is None:
        zeros = jnp.zeros((bsz, hidden), dtype)
        initial_state = LSTMState(zeros, zeros)
    else:
        check_shape("initial_state.h", initial_state.h, (bsz, hidden))
        check_shape("initial_state.c", initial_state.c, (bsz, hidden))
        initial_state = LSTMState(*(s.astype(dtype) for s in initial_state))
    acts = dict(gate_fn=gate_fn, cell_fn=cell_fn, out_fn=out_fn, carry_fn=carry_fn)
    cell = lambda s, xw_t: lstm_cell(s, xw_t, w_hh, **acts)
    final, h = _scan_cell(cell, initial_state, x, w_ih, b, method, dtype)
    h = h.astype(x.dtype)
    return (h, final) if return_final_state else h


def gru(
    x: jax.Array,
    w_ih: jax.Array,
    w_hh: jax.Array,
    b_ih: jax.Array | None = None,
    b_hh: jax.Array | None = None,
    *,
    initial_state: jax.Array | None = None,
    return_final_state: bool = False,
    gate_fn: Act = jax.nn.sigmoid,
    cell_fn: Act = jnp.tanh,
    carry_fn: Act | None = None,
    method: str = "auto",
):
    """GRU over axis 1.

    Args:
      x: inputs `[b, l, d_in]`.
      w_ih, w_hh: weights `[d_in, 3h]`, `[h, 3h]` (gate order `r, z, n`).
      b_ih, b_hh: input and recurrent biases `[3h]` (`b_hh`'s `n` part sits inside `r * (.)`).
      initial_state: `h0: [b, h]`; zeros when None.
      return_final_state: also return the final `h: [b, h]`.
      gate_fn, cell_fn: swappable nonlinearities (see `gru_cell`).
      carry_fn: applied to `h` after every step (e.g. a fixed-point quantizer).
      method: "ref" (projection inside the scan), "scan" (hoisted projection), "auto".

    Returns:
      `h: [b, l, h]` in `x.dtype`, and the final state when `return_final_state`.
    """
    method = resolve_method(method, x.shape[1] if x.ndim >= 2 else 0)
    hidden = _check_weights(x, w_ih, w_hh, 3, {"b_ih": b_ih, "b_hh": b_hh})
    dtype = _carry_dtype(x.dtype)
    bsz = x.shape[0]
    if initial_state is None:
        h0 = jnp.zeros((bsz, hidden), dtype)
    else:
        check_shape("initial_state", initial_state, (bsz, hidden))
        h0 = initial_state.astype(dtype)
    acts = dict(gate_fn=gate_fn, cell_fn=cell_fn, carry_fn=carry_fn)
    cell = lambda h, xw_t: gru_cell(h, xw_t, w_hh, b_hh, **acts)
    final, h = _scan_cell(cell, h0, x, w_ih, b_ih, method, dtype)
    h = h.astype(x.dtype)
    return (h, final) if return_final_state else h


def lstm_ref(x, w_ih, w_hh, b=None, **kwargs):
    """The definition of `lstm`: input projection inside the `lax.scan` (`method="ref"`)."""
    return lstm(x, w_ih, w_hh, b, method="ref", **kwargs)


def gru_ref(x, w_ih, w_hh, b_ih=None, b_hh=None, **kwargs):
    """The definition of `gru`: input projection inside the `lax.scan` (`method="ref"`)."""
    return gru(x, w_ih, w_hh, b_ih, b_hh, method="ref", **kwargs)
