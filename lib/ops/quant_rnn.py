"""Quantized recurrence: recurrent cells with quantized weights, activations AND recurrent carry
(fixed-point recurrent state, as in integer-only RNN inference and analog-crossbar RNNs).

Two layers:
- carry-quantized scans (`lstm_carry_quant`, `gru_carry_quant`, `egru_carry_quant`,
  `min_gru_carry_quant`, `min_lstm_carry_quant`, and their `*_step` twins): the cells of
  `lib.ops.rnn`, `lib.ops.rnn_egru` and `lib.ops.rnn_min` with a `carry_fn` applied to the new
  carry after every step (and the gate/candidate nonlinearities swapped for quantized ones by
  the caller); `linear_recurrence_carry_quant` (diagonal SSMs: LRU, S4D, S5, RG-LRU),
  `selective_scan_carry_quant` (Mamba), `gla_carry_quant` (GLA, RetNet), `rwkv6_carry_quant`
  (RWKV-6) and `lmu_memory_carry_quant` (the LMU's Legendre memory), sequential scans
  of their own `*_step` forms. The quantizers are plain callables, so `lib.nn.rnn`'s `quant=` option passes
  `QuantSpec`-built ones and the bit-width API below passes fixed-grid ones. The full form and
  the step form run the same per-step arithmetic, so step-by-step equals the full sequence.
- `quantized_lstm` / `quantized_gru`: the bit-width API (each `None` leaves that part in float):
  weights symmetric int per output column (dynamic max); inputs symmetric int per tensor
  (dynamic max); sigmoid outputs on the unsigned grid `k / (2**b - 1)` of [0, 1]; tanh outputs
  and the hidden state `h` on the signed grid `k / (2**(b-1) - 1)` of [-1, 1]; the LSTM cell
  state `c` fixed point in `[-cell_range, cell_range]`, saturating.

A quantized carry makes the recurrence nonlinear in `h`, so minGRU/minLSTM lose their parallel
scan: `method="auto"` resolves to the sequential "ref" form when `carry_fn` is given, "scan"
(`lib.ops.scan.linear_recurrence`) otherwise; "scan" with a `carry_fn` is an error, and so is
"log" (quantized gates can be exactly 0, which has no logarithm).
Every quantizer is a straight-through fake quantization, so the same functions serve QAT and
the integer-inference error study.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from lib.ops._checks import check_method, check_rank, check_shape
from lib.ops.linear_attention import _check as _check_gla
from lib.ops.linear_attention_rwkv import _check as _check_rwkv6
from lib.ops.quant import fake_quant, int_scale
from lib.ops.rnn import LSTMState, gru_cell, lstm_cell, resolve_method
from lib.ops.rnn_egru import EGRUState, _fire, egru_cell, egru_init_state
from lib.ops.scan import linear_recurrence
from lib.ops.ssm import _check as _check_selective
from lib.ops.ssm import discretize_delta

Fn = Callable[[jax.Array], jax.Array]
MIN_METHODS = ("auto", "ref", "scan", "log")


def _identity(x):
    return x


def _f32(x):
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))


def _scan_time(step, carry, xs):
    """`lax.scan` of `step` over axis 1 of every array in `xs`; outputs back batch-first."""
    carry, ys = jax.lax.scan(step, carry, jax.tree.map(lambda v: jnp.swapaxes(v, 0, 1), xs))
    return carry, jnp.swapaxes(ys, 0, 1)


def _check_cell(x, w_ih, w_hh, k, biases):
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


def _project(x_t, w_ih, b):
    """Input contribution `x W_ih + b` (one step `[b, d]` or a whole sequence `[b, l, d]`)."""
    xw = jnp.matmul(x_t.astype(jnp.float32), w_ih.astype(jnp.float32))
    return xw if b is None else xw + b.astype(jnp.float32)


def _init(initial_state, zeros, names):
    if initial_state is None:
        return zeros
    for name, s, z in zip(names, jax.tree.leaves(initial_state), jax.tree.leaves(zeros)):
        check_shape(name, s, z.shape)
    return jax.tree.map(lambda s: s.astype(jnp.float32), initial_state)


def _full(cell, carry, x, w_ih, b, hoist, return_final_state, dtype):
    if hoist:  # one matmul for every step, then only the recurrent matmul in the loop
        final, y = _scan_time(cell, carry, _project(x, w_ih, b))
    else:  # the step form itself, scanned
        final, y = _scan_time(lambda s, x_t: cell(s, _project(x_t, w_ih, b)), carry, x)
    y = y.astype(dtype)
    return (y, final) if return_final_state else y


# ------------------------------------------------------------------ LSTM, GRU, EGRU cells


def lstm_carry_quant_step(
    state, x_t, w_ih, w_hh, b=None, *, carry_fn: Fn = _identity, gate_fn=jax.nn.sigmoid,
    cell_fn=jnp.tanh,
):  # fmt: skip
    """One LSTM step then `carry_fn` on the new `LSTMState`: `(state, [b, d]) -> (state, h)`;
    the output is the (quantized) carried `h`."""
    state, _ = lstm_cell(state, _project(x_t, w_ih, b), w_hh, gate_fn=gate_fn, cell_fn=cell_fn)
    state = carry_fn(state)
    return state, state.h


def lstm_carry_quant(
    x, w_ih, w_hh, b=None, *, carry_fn: Fn = _identity, gate_fn=jax.nn.sigmoid,
    cell_fn=jnp.tanh, initial_state: LSTMState | None = None, return_final_state=False,
    method: str = "auto",
):  # fmt: skip
    """LSTM over axis 1 with `carry_fn: LSTMState -> LSTMState` applied after every step.

    Args:
      x: `[b, l, d_in]` (already quantized by the caller if wanted); w_ih: `[d_in, 4h]`;
        w_hh: `[h, 4h]`; b: `[4h]` (gates i, f, g, o), as in `lib.ops.rnn.lstm`.
      carry_fn: quantizer of the carry `(h, c)`; gate_fn, cell_fn: (quantized) nonlinearities.
      method: "ref" (projection inside the scan: exactly the step form), "scan" (hoisted
        projection) or "auto" (`lib.ops.rnn.resolve_method`).

    Returns:
      `h: [b, l, h]` in `x.dtype` [, final `LSTMState` (float32)].
    """
    hoist = resolve_method(method, x.shape[1] if x.ndim == 3 else 0) == "scan"
    hidden = _check_cell(x, w_ih, w_hh, 4, {"b": b})
    zeros = jnp.zeros((x.shape[0], hidden), jnp.float32)
    s0 = _init(initial_state, LSTMState(zeros, zeros), ("initial_state.h", "initial_state.c"))

    def cell(s, xw_t):
        s, _ = lstm_cell(s, xw_t, w_hh, gate_fn=gate_fn, cell_fn=cell_fn)
        s = carry_fn(s)
        return s, s.h

    return _full(cell, s0, x, w_ih, b, hoist, return_final_state, x.dtype)


def gru_carry_quant_step(
    h, x_t, w_ih, w_hh, b_ih=None, b_hh=None, *, carry_fn: Fn = _identity,
    gate_fn=jax.nn.sigmoid, cell_fn=jnp.tanh,
):  # fmt: skip
    """One GRU step then `carry_fn` on the new `h`: `(h, [b, d]) -> (h, h)`."""
    h, _ = gru_cell(h, _project(x_t, w_ih, b_ih), w_hh, b_hh, gate_fn=gate_fn, cell_fn=cell_fn)
    h = carry_fn(h)
    return h, h


def gru_carry_quant(
    x, w_ih, w_hh, b_ih=None, b_hh=None, *, carry_fn: Fn = _identity, gate_fn=jax.nn.sigmoid,
    cell_fn=jnp.tanh, initial_state=None, return_final_state=False, method: str = "auto",
):  # fmt: skip
    """GRU over axis 1 (weights as `lib.ops.rnn.gru`) with `carry_fn` on `h` after every step.

    Returns:
      `h: [b, l, h]` in `x.dtype` [, final `h: [b, h]` (float32)]; see `lstm_carry_quant`.
    """
    hoist = resolve_method(method, x.shape[1] if x.ndim == 3 else 0) == "scan"
    hidden = _check_cell(x, w_ih, w_hh, 3, {"b_ih": b_ih, "b_hh": b_hh})
    h0 = _init(initial_state, jnp.zeros((x.shape[0], hidden), jnp.float32), ("initial_state",))

    def cell(h, xw_t):
        h, _ = gru_cell(h, xw_t, w_hh, b_hh, gate_fn=gate_fn, cell_fn=cell_fn)
        h = carry_fn(h)
        return h, h

    return _full(cell, h0, x, w_ih, b_ih, hoist, return_final_state, x.dtype)


def egru_carry_quant_step(
    state, x_t, w_ih, w_hh, b_ih, b_hh, threshold, *, carry_fn: Fn = _identity, surrogate=None,
    gate_fn=jax.nn.sigmoid, cell_fn=jnp.tanh,
):  # fmt: skip
    """One EGRU step then `carry_fn` on the new `EGRUState(c, y)`; the output is the carried
    (quantized) event output `y`."""
    state, _ = egru_cell(
        state, _project(x_t, w_ih, b_ih), w_hh, b_hh, threshold, fire=_fire(surrogate),
        gate_fn=gate_fn, cell_fn=cell_fn,
    )  # fmt: skip
    state = carry_fn(state)
    return state, state.y


def egru_carry_quant(
    x, w_ih, w_hh, b_ih, b_hh, threshold, *, carry_fn: Fn = _identity, surrogate=None,
    gate_fn=jax.nn.sigmoid, cell_fn=jnp.tanh, initial_state: EGRUState | None = None,
    return_final_state=False, method: str = "auto",
):  # fmt: skip
    """EGRU over axis 1 (as `lib.ops.rnn_egru.egru`) with `carry_fn` on `EGRUState(c, y)`
    after every step.

    Returns:
      event outputs `y: [b, l, h]` in `x.dtype` [, final `EGRUState` (float32)].
    """
    hoist = resolve_method(method, x.shape[1] if x.ndim == 3 else 0) == "scan"
    hidden = _check_cell(x, w_ih, w_hh, 3, {"b_ih": b_ih, "b_hh": b_hh})
    threshold = jnp.broadcast_to(jnp.asarray(threshold, jnp.float32), (hidden,))
    s0 = _init(
        initial_state, egru_init_state(x.shape[0], hidden), ("initial_state.c", "initial_state.y")
    )
    fire = _fire(surrogate)

    def cell(s, xw_t):
        s, _ = egru_cell(s, xw_t, w_hh, b_hh, threshold, fire=fire, gate_fn=gate_fn,
                         cell_fn=cell_fn)  # fmt: skip
        s = carry_fn(s)
        return s, s.y

    return _full(cell, s0, x, w_ih, b_ih, hoist, return_final_state, x.dtype)


# ------------------------------------------------------------------ linear recurrences


def linear_recurrence_carry_quant(
    a, b, h0=None, carry_fn: Fn | None = None, *, return_final_state: bool = False
):
    """`h_t = carry_fn(a_t * h_{t-1} + b_t)` over axis 1, sequentially (a `lax.scan`).

    The quantized-carry twin of `lib.ops.scan.linear_recurrence` (real or complex): once the
    carry is rounded at every step the recurrence is no longer linear, so it has no parallel
    form. Used by minGRU/minLSTM and the diagonal SSMs (LRU) with a quantized state.

    Args:
      a: decays `[b, l, *f]`, or `[*f]` shared by every batch row and step.
      b: inputs `[b, l, *f]`.  h0: `[b, *f]` (zeros when None).
      carry_fn: quantizer of the carry (None: identity, the plain recurrence).

    Returns:
      `h: [b, l, *f]` [, the final state `[b, *f]`].
    """
    check_rank("b", b, tuple(range(3, 8)))
    fn = carry_fn or _identity
    h0 = jnp.zeros(b.shape[:1] + b.shape[2:], b.dtype) if h0 is None else h0
    check_shape("h0", h0, b.shape[:1] + b.shape[2:])
    if jnp.ndim(a) == b.ndim:
        check_shape("a", a, b.shape)

        def step(h, inp):
            h = fn(inp[0] * h + inp[1])
            return h, h

        final, h = _scan_time(step, h0, (a, b))
    else:
        check_shape("a", a, b.shape[2:])

        def step(h, b_t):
            h = fn(a * h + b_t)
            return h, h

        final, h = _scan_time(step, h0, b)
    return (h, final) if return_final_state else h


# ------------------------------------------------------------------ selective scan, GLA


def selective_scan_carry_quant_step(
    h, u_t, delta_t, A, B_t, C_t, D=None, *, z_t=None, delta_bias=None, delta_softplus=False,
    carry_fn: Fn | None = None,
):  # fmt: skip
    """One step of Mamba's selective scan with `carry_fn` on the new state:
    `h = carry_fn(exp(dt A) h + dt u B)`, `y = C h (+ D u) (* silu(z))`.

    Args: `h: [b, d, n]` float32; `u_t, delta_t, z_t: [b, d]`; `B_t, C_t: [b, n]`; `A: [d, n]`;
    the rest as `lib.ops.ssm.selective_scan`. Returns `(h, y_t [b, d] in u_t.dtype)`.
    """
    dt = discretize_delta(delta_t, delta_bias, delta_softplus)
    u32 = _f32(u_t)
    dA = jnp.exp(dt[..., None] * _f32(A))
    h = (carry_fn or _identity)(dA * h + (dt * u32)[..., None] * _f32(B_t)[:, None, :])
    y = jnp.einsum("bdn,bn->bd", h, _f32(C_t))
    if D is not None:
        y = y + u32 * _f32(D)
    if z_t is not None:
        y = y * jax.nn.silu(_f32(z_t))
    return h, y.astype(u_t.dtype)


def selective_scan_carry_quant(
    u, delta, A, B, C, D=None, *, z=None, delta_bias=None, delta_softplus=False,
    carry_fn: Fn | None = None, initial_state=None, return_final_state=False,
):  # fmt: skip
    """`lib.ops.ssm.selective_scan` with `carry_fn` applied to the state `[b, d, n]` after
    every step: sequential (a rounded carry has no associative or chunked form); the full
    form scans `selective_scan_carry_quant_step`, so it equals the step form exactly.

    Returns:
      `y [b, l, d]` in `u.dtype` [, the final state `[b, d, n]` float32].
    """
    _check_selective(u, delta, A, B, C, D, z, delta_bias, initial_state)
    b, _, d = u.shape
    h0 = jnp.zeros((b, d, A.shape[1]), jnp.float32) if initial_state is None else initial_state
    step = lambda h, xs: selective_scan_carry_quant_step(
        h, xs[0], xs[1], A, xs[2], xs[3], D, z_t=xs[4], delta_bias=delta_bias,
        delta_softplus=delta_softplus, carry_fn=carry_fn,
    )  # fmt: skip
    final, y = _scan_time(step, _f32(h0), (u, delta, B, C, z))
    return (y, final) if return_final_state else y


def gla_carry_quant_step(S, q_t, k_t, v_t, g_t, *, scale=None, carry_fn: Fn | None = None):
    """One GLA token with `carry_fn` on the new state: `S = carry_fn(diag(exp(g)) S + k^T v)`,
    `o = scale * q S`; shapes as `lib.ops.linear_attention.gla_step` (`g_t: [b, h, dk]` or
    `[b, h]`). Returns `(S [b, h, dk, dv] float32, o_t [b, h, dv] in q_t.dtype)`."""
    scale = q_t.shape[-1] ** -0.5 if scale is None else scale
    g_t = _f32(g_t)
    decay = jnp.exp(g_t)[..., None] if g_t.ndim == 3 else jnp.exp(g_t)[..., None, None]
    S = decay * S + _f32(k_t)[..., None] * _f32(v_t)[..., None, :]
    S = (carry_fn or _identity)(S)
    return S, (scale * jnp.einsum("bhk,bhkv->bhv", _f32(q_t), S)).astype(q_t.dtype)


def gla_carry_quant(
    q, k, v, g, *, scale=None, carry_fn: Fn | None = None, initial_state=None,
    return_final_state=False,
):  # fmt: skip
    """`lib.ops.linear_attention.gla` (the recurrent form; RetNet with `g = log gamma` per
    head) with `carry_fn` on the state `[b, h, dk, dv]` after every step: a scan of
    `gla_carry_quant_step`. Returns `o [b, l, h, dv]` [, final state float32]."""
    _check_gla(q, k, v, g, initial_state, None)
    b, _, h, dk = q.shape
    S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32) if initial_state is None else initial_state
    step = lambda S, xs: gla_carry_quant_step(S, *xs, scale=scale, carry_fn=carry_fn)
    final, o = _scan_time(step, _f32(S0), (q, k, v, g))
    return (o, final) if return_final_state else o


def rwkv6_carry_quant_step(S, r_t, k_t, v_t, g_t, u, *, carry_fn: Fn | None = None):
    """One RWKV-6 token with `carry_fn` on the new state: `o = r (S + diag(u) k^T v)` (from the
    previous, quantized state) then `S = carry_fn(diag(exp(g)) S + k^T v)`; shapes as
    `lib.ops.linear_attention_rwkv.rwkv6_step`. Returns `(S float32, o_t [b, h, dv] float32)`."""
    r_t, k_t, v_t, g_t = (_f32(x) for x in (r_t, k_t, v_t, g_t))
    kv = k_t[..., :, None] * v_t[..., None, :]
    o = jnp.einsum("bhk,bhkv->bhv", r_t, S + _f32(u)[..., None] * kv)
    return (carry_fn or _identity)(jnp.exp(g_t)[..., None] * S + kv), o


def rwkv6_carry_quant(
    r, k, v, g, u, *, carry_fn: Fn | None = None, initial_state=None, return_final_state=False
):
    """`lib.ops.linear_attention_rwkv.rwkv6` (its recurrent form) with `carry_fn` on the state
    `[b, h, dk, dv]` after every step: a scan of `rwkv6_carry_quant_step` (the bonus term reads
    the current token's `k^T v` in float; only the carried state is rounded).
    Returns `o [b, l, h, dv]` in `r.dtype` [, final state float32]."""
    _check_rwkv6(r, k, v, g, u, initial_state)
    b, _, h, dk = r.shape
    S0 = jnp.zeros((b, h, dk, v.shape[-1]), jnp.float32) if initial_state is None else initial_state
    step = lambda S, xs: rwkv6_carry_quant_step(S, *xs, u, carry_fn=carry_fn)
    final, o = _scan_time(step, _f32(S0), (r, k, v, g))
    o = o.astype(r.dtype)
    return (o, final) if return_final_state else o


# ------------------------------------------------------------------ LMU memory


def lmu_memory_carry_quant_step(m, u_t, a_bar, b_bar, *, carry_fn: Fn | None = None):
    """One step of the LMU's Legendre memory with `carry_fn` on the new memory:
    `m = carry_fn(m A_bar^T + u_t B_bar)`; `m: [b, d, N]`, `u_t: [b, d]`, `a_bar [N, N]`,
    `b_bar [N]` (see `lib.ops.lmu.lmu_discretize`). Returns `(m, m)` (float32 or wider)."""
    m = _f32(m)
    a, bb = jnp.asarray(a_bar, m.dtype), jnp.asarray(b_bar, m.dtype)
    m = jnp.einsum("bdm,nm->bdn", m, a) + u_t.astype(m.dtype)[..., None] * bb
    m = (carry_fn or _identity)(m)
    return m, m


def lmu_memory_carry_quant(
    u, a_bar, b_bar, *, carry_fn: Fn | None = None, initial_state=None, return_final_state=False
):
    """`lib.ops.lmu.lmu_memory` with `carry_fn` on the memory `[b, d, N]` after every step:
    sequential (a rounded memory is no longer LTI, so it has no convolution form); a scan of
    `lmu_memory_carry_quant_step`, so the full form equals the step form.

    Returns:
      `m: [b, l, d, N]` float32 (or wider) [, the final memory `[b, d, N]`].
    """
    check_rank("u", u, 3)
    check_rank("b_bar", b_bar, 1)
    n = b_bar.shape[0]
    check_shape("a_bar", a_bar, (n, n))
    b, _, d = u.shape
    dtype = jnp.promote_types(u.dtype, jnp.float32)
    m0 = jnp.zeros((b, d, n), dtype) if initial_state is None else initial_state
    check_shape("initial_state", m0, (b, d, n))
    step = lambda m, u_t: lmu_memory_carry_quant_step(m, u_t, a_bar, b_bar, carry_fn=carry_fn)
    final, m = _scan_time(step, m0.astype(dtype), u)
    return (m, final) if return_final_state else m


# ------------------------------------------------------------------ minGRU, minLSTM


def _min_gru_gates(z_logits, gate_fn):
    """(forget factor, input gate) `(1 - z, z)` with `z = gate_fn(sigmoid(k))`."""
    z = gate_fn(jax.nn.sigmoid(_f32(z_logits)))
    return 1.0 - z, z


def _min_lstm_gates(f_logits, i_logits, gate_fn):
    """Normalised `(f', i')`: `f' = f / (f + i) = sigmoid(-diff)` with
    `diff = softplus(-kf) - softplus(-ki)` (no division, no underflow), each through `gate_fn`."""
    diff = jax.nn.softplus(-_f32(f_logits)) - jax.nn.softplus(-_f32(i_logits))
    return gate_fn(jax.nn.sigmoid(-diff)), gate_fn(jax.nn.sigmoid(diff))


def _min_resolve(method, carry_fn):
    check_method(method, MIN_METHODS)
    if method == "log":
        raise ValueError(
            "method='log' needs exact gates (a quantized gate can be 0, which has no log); "
            "use 'ref' or 'scan'"
        )
    if method == "scan" and carry_fn is not None:
        raise ValueError(
            "a quantized carry makes the recurrence nonlinear in h: method='scan' (the parallel "
            "linear recurrence) cannot apply it; use 'ref' or 'auto'"
        )
    if method == "auto":
        return "ref" if carry_fn is not None else "scan"
    return method


def _min_run(a, i, h_tilde, initial_state, carry_fn, method, return_final_state):
    method = _min_resolve(method, carry_fn)
    b, _, d = h_tilde.shape
    h0 = _init(initial_state, jnp.zeros((b, d), jnp.float32), ("initial_state",))
    bx = i * _f32(h_tilde)
    if method == "scan":
        h, final = linear_recurrence(a, bx, h0, return_final_state=True)
    else:
        h, final = linear_recurrence_carry_quant(a, bx, h0, carry_fn, return_final_state=True)
    h = h.astype(h_tilde.dtype)
    return (h, final) if return_final_state else h


def min_gru_carry_quant(
    z_logits, h_tilde, *, gate_fn: Fn = _identity, carry_fn: Fn | None = None,
    initial_state=None, return_final_state=False, method: str = "auto",
):  # fmt: skip
    """minGRU over axis 1, `h_t = carry_fn((1 - z_t) h_{t-1} + z_t h~_t)`, `z = gate_fn(sigmoid(k))`.

    Args:
      z_logits, h_tilde: `[b, l, d]` (quantize `h~` before calling, if wanted).
      gate_fn: quantizer of the gate `z` in [0, 1]; carry_fn: quantizer of `h` (None: float).
      method: "ref" (sequential), "scan" (parallel `linear_recurrence`; only without
        `carry_fn`) or "auto" (see the module docstring).

    Returns:
      `h: [b, l, d]` in `h_tilde.dtype` [, final `h: [b, d]` (float32)].
    """
    check_rank("z_logits", z_logits, 3)
    check_shape("h_tilde", h_tilde, z_logits.shape)
    a, i = _min_gru_gates(z_logits, gate_fn)
    return _min_run(a, i, h_tilde, initial_state, carry_fn, method, return_final_state)


def min_lstm_carry_quant(
    f_logits, i_logits, h_tilde, *, gate_fn: Fn = _identity, carry_fn: Fn | None = None,
    initial_state=None, return_final_state=False, method: str = "auto",
):  # fmt: skip
    """minLSTM over axis 1, `h_t = carry_fn(f'_t h_{t-1} + i'_t h~_t)` with normalised gates
    through `gate_fn`; arguments as `min_gru_carry_quant`."""
    check_rank("f_logits", f_logits, 3)
    check_shape("i_logits", i_logits, f_logits.shape)
    check_shape("h_tilde", h_tilde, f_logits.shape)
    a, i = _min_lstm_gates(f_logits, i_logits, gate_fn)
    return _min_run(a, i, h_tilde, initial_state, carry_fn, method, return_final_state)


def min_gru_carry_quant_step(h, z_logit_t, h_tilde_t, *, gate_fn=_identity, carry_fn=None):
    """Streaming form of `min_gru_carry_quant`: `(h: [b, d], k_t, h~_t) -> (h, h)`."""
    a, i = _min_gru_gates(z_logit_t, gate_fn)
    h = (carry_fn or _identity)(a * h + i * _f32(h_tilde_t))
    return h, h


def min_lstm_carry_quant_step(
    h, f_logit_t, i_logit_t, h_tilde_t, *, gate_fn=_identity, carry_fn=None
):
    """Streaming form of `min_lstm_carry_quant`: `(h: [b, d], kf_t, ki_t, h~_t) -> (h, h)`."""
    a, i = _min_lstm_gates(f_logit_t, i_logit_t, gate_fn)
    h = (carry_fn or _identity)(a * h + i * _f32(h_tilde_t))
    return h, h


# ------------------------------------------------------------------ the bit-width API


def _fq_fixed(x, bits, limit, signed=True):
    """Fake quantization on a fixed grid covering [-limit, limit] (or [0, limit])."""
    if bits is None:
        return x
    if signed:
        scale = limit / (2 ** (bits - 1) - 1)
        return fake_quant(x, bits, scale=scale, narrow_range=True, clip_gradient=False)
    scale = limit / (2**bits - 1)
    return fake_quant(x, bits, scale=scale, zero_point=0, clip_gradient=False)


def _fq_dynamic(x, bits, axis=None):
    if bits is None:
        return x
    scale, _ = int_scale(jax.lax.stop_gradient(x), bits, axis=axis, narrow_range=True)
    return fake_quant(x, bits, scale=scale, narrow_range=True)


def _prepare(x, w_ih, w_hh, weight_bits, input_bits):
    check_rank("x", x, 3)
    w_ih = _fq_dynamic(w_ih, weight_bits, axis=-1)
    w_hh = _fq_dynamic(w_hh, weight_bits, axis=-1)
    return _fq_dynamic(x.astype(jnp.float32), input_bits), w_ih, w_hh


def _act_fns(act_bits):
    gate_fn = lambda z: _fq_fixed(jax.nn.sigmoid(z), act_bits, 1.0, signed=False)
    cell_fn = lambda z: _fq_fixed(jnp.tanh(z), act_bits, 1.0)
    return dict(gate_fn=gate_fn, cell_fn=cell_fn)


@functools.partial(
    jax.jit,
    static_argnames=(
        "weight_bits",
        "input_bits",
        "act_bits",
        "state_bits",
        "cell_range",
        "return_final_state",
    ),
)
def quantized_lstm(
    x,
    w_ih,
    w_hh,
    b=None,
    *,
    weight_bits=8,
    input_bits=8,
    act_bits=8,
    state_bits=8,
    cell_range: float = 4.0,
    initial_state: LSTMState | None = None,
    return_final_state: bool = False,
):
    """LSTM over axis 1 with quantized weights, activations and carry `(h, c)`.

    Args:
      x: `[b, l, d_in]`; w_ih: `[d_in, 4h]`; w_hh: `[h, 4h]`; b: `[4h]` (gates i, f, g, o).
      weight_bits, input_bits, act_bits, state_bits: int bits, or None for float.
      cell_range: saturation of the fixed-point cell state.
      initial_state: `LSTMState(h, c)`, each `[b, h]` (default zeros).

    Returns:
      `h: [b, l, h]` float32 [, final `LSTMState`].
    """
    x, w_ih, w_hh = _prepare(x, w_ih, w_hh, weight_bits, input_bits)

    def carry_fn(s):
        h = _fq_fixed(s.h, state_bits, 1.0)
        c = _fq_fixed(jnp.clip(s.c, -cell_range, cell_range), state_bits, cell_range)
        return LSTMState(h, c)

    return lstm_carry_quant(
        x, w_ih, w_hh, b, carry_fn=carry_fn, initial_state=initial_state,
        return_final_state=return_final_state, method="scan", **_act_fns(act_bits),
    )  # fmt: skip


@functools.partial(
    jax.jit,
    static_argnames=("weight_bits", "input_bits", "act_bits", "state_bits", "return_final_state"),
)
def quantized_gru(
    x,
    w_ih,
    w_hh,
    b_ih=None,
    b_hh=None,
    *,
    weight_bits=8,
    input_bits=8,
    act_bits=8,
    state_bits=8,
    initial_state=None,
    return_final_state: bool = False,
):
    """GRU over axis 1 with quantized weights, activations and hidden state.

    Args:
      x: `[b, l, d_in]`; w_ih: `[d_in, 3h]`; w_hh: `[h, 3h]`; b_ih, b_hh: `[3h]` (r, z, n).
      weight_bits, input_bits, act_bits, state_bits: int bits, or None for float.
      initial_state: `[b, h]` (default zeros).

    Returns:
      `h: [b, l, h]` float32 [, final state `[b, h]`].
    """
    x, w_ih, w_hh = _prepare(x, w_ih, w_hh, weight_bits, input_bits)
    return gru_carry_quant(
        x, w_ih, w_hh, b_ih, b_hh, carry_fn=lambda h: _fq_fixed(h, state_bits, 1.0),
        initial_state=initial_state, return_final_state=return_final_state, method="scan",
        **_act_fns(act_bits),
    )  # fmt: skip
