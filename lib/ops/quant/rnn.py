"""Quantized recurrent cells: weights, activations AND recurrent carry quantized (fixed-point
recurrent state, as in integer-only RNN inference and analog-crossbar RNNs).

- LSTM, GRU and EGRU need nothing here: `lib.ops.rnn.cells.lstm` / `gru` and
  `lib.ops.rnn.egru.egru` (and their `*_step` forms) take the quantized nonlinearities as
  `gate_fn` / `cell_fn` and a `carry_fn` applied to the new carry after every step, so each
  cell's equations live once (`lib.nn.rnn.mixers`'s `quant=` passes `QuantSpec`-built quantizers).
- minGRU/minLSTM with a quantized carry and gates (`min_gru_carry_quant`,
  `min_lstm_carry_quant` and their `*_step` twins): the gates are computed in linear space (a
  quantized gate can be exactly 0, which has no logarithm), so they are written here.
- `quantized_lstm` / `quantized_gru`: the bit-width API (each `None` leaves that part in float):
  weights symmetric int per output column (dynamic max); inputs symmetric int per tensor
  (dynamic max); sigmoid outputs on the unsigned grid `k / (2**b - 1)` of [0, 1]; tanh outputs
  and the hidden state `h` on the signed grid `k / (2**(b-1) - 1)` of [-1, 1]; the LSTM cell
  state `c` fixed point in `[-cell_range, cell_range]`, saturating.
The state-space and linear-attention scans with a quantized carry are in `lib.ops.quant.scan`.

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
from lib.ops.quant.formats import fake_quant, int_scale
from lib.ops.quant.scan import _f32, _identity, linear_recurrence_carry_quant
from lib.ops.rnn.cells import LSTMState, gru, lstm
from lib.ops.scan.linear import linear_recurrence

Fn = Callable[[jax.Array], jax.Array]
MIN_METHODS = ("auto", "ref", "scan", "log")


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
    if initial_state is None:
        h0 = jnp.zeros((b, d), jnp.float32)
    else:
        check_shape("initial_state", initial_state, (b, d))
        h0 = initial_state.astype(jnp.float32)
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

    return lstm(
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
    return gru(
        x, w_ih, w_hh, b_ih, b_hh, carry_fn=lambda h: _fq_fixed(h, state_bits, 1.0),
        initial_state=initial_state, return_final_state=return_final_state, method="scan",
        **_act_fns(act_bits),
    )  # fmt: skip
