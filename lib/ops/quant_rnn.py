"""Quantized recurrence: LSTM / GRU with quantized weights, activations AND recurrent carry
(fixed-point recurrent state, as in integer-only RNN inference and analog-crossbar RNNs).

Built on `lib.ops.rnn`'s cells with swapped nonlinearities. Every quantizer is a straight-
through fake quantization, so the same functions serve QAT and the integer-inference error
study. Formats (each `None` leaves that part in float):
- weights: symmetric int, one scale per output column (dynamic max);
- inputs: symmetric int per tensor (dynamic max);
- gate activations: sigmoid outputs on the unsigned grid `k / (2**b - 1)` of [0, 1];
  tanh outputs and the hidden state `h` on the signed grid `k / (2**(b-1) - 1)` of [-1, 1];
- the LSTM cell state `c`: fixed point in `[-cell_range, cell_range]`, saturating.
"""

import functools

import jax
import jax.numpy as jnp

from lib.ops._checks import check_rank
from lib.ops.quant import fake_quant, int_scale
from lib.ops.rnn import LSTMState, gru_cell, lstm_cell


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
    hidden = w_hh.shape[0]
    xw = x @ w_ih + (0.0 if b is None else b)
    gate_fn = lambda z: _fq_fixed(jax.nn.sigmoid(z), act_bits, 1.0, signed=False)
    cell_fn = lambda z: _fq_fixed(jnp.tanh(z), act_bits, 1.0)

    def step(state, xw_t):
        state, _ = lstm_cell(state, xw_t, w_hh, gate_fn=gate_fn, cell_fn=cell_fn)
        h = _fq_fixed(state.h, state_bits, 1.0)
        c = _fq_fixed(jnp.clip(state.c, -cell_range, cell_range), state_bits, cell_range)
        return LSTMState(h, c), h

    if initial_state is None:
        zeros = jnp.zeros((x.shape[0], hidden), jnp.float32)
        initial_state = LSTMState(zeros, zeros)
    final, hs = jax.lax.scan(step, initial_state, jnp.swapaxes(xw, 0, 1))
    hs = jnp.swapaxes(hs, 0, 1)
    return (hs, final) if return_final_state else hs


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
    hidden = w_hh.shape[0]
    xw = x @ w_ih + (0.0 if b_ih is None else b_ih)
    gate_fn = lambda z: _fq_fixed(jax.nn.sigmoid(z), act_bits, 1.0, signed=False)
    cell_fn = lambda z: _fq_fixed(jnp.tanh(z), act_bits, 1.0)

    def step(h, xw_t):
        h, _ = gru_cell(h, xw_t, w_hh, b_hh, gate_fn=gate_fn, cell_fn=cell_fn)
        h = _fq_fixed(h, state_bits, 1.0)
        return h, h

    h0 = jnp.zeros((x.shape[0], hidden), jnp.float32) if initial_state is None else initial_state
    final, hs = jax.lax.scan(step, h0, jnp.swapaxes(xw, 0, 1))
    hs = jnp.swapaxes(hs, 0, 1)
    return (hs, final) if return_final_state else hs
