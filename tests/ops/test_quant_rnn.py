"""Quantized LSTM/GRU (weights, activations, carry) converge to float as bits grow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.quant_rnn import quantized_gru, quantized_lstm
from lib.ops.rnn import LSTMState, gru, lstm


def _weights(k, d_in, h, gates):
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(k), 3)
    w_ih = jax.random.normal(k1, (d_in, gates * h)) / d_in**0.5
    w_hh = jax.random.normal(k2, (h, gates * h)) / h**0.5
    return w_ih, w_hh, 0.1 * jax.random.normal(k3, (gates * h,))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_quantized_rnn_converges_to_float(cell):
    d_in, h, length = 6, 16, 41
    x = jax.random.normal(jax.random.PRNGKey(0), (2, length, d_in))
    if cell == "lstm":
        w_ih, w_hh, b = _weights(1, d_in, h, 4)
        ref = lstm(x, w_ih, w_hh, b)
        run = jax.jit(
            lambda bits: quantized_lstm(
                x,
                w_ih,
                w_hh,
                b,
                weight_bits=bits,
                input_bits=bits,
                act_bits=bits,
                state_bits=bits,
            ),
            static_argnums=0,
        )
    else:
        w_ih, w_hh, b = _weights(2, d_in, h, 3)
        ref = gru(x, w_ih, w_hh, b, b)
        run = jax.jit(
            lambda bits: quantized_gru(
                x,
                w_ih,
                w_hh,
                b,
                b,
                weight_bits=bits,
                input_bits=bits,
                act_bits=bits,
                state_bits=bits,
            ),
            static_argnums=0,
        )
    np.testing.assert_allclose(run(None), ref, atol=1e-5)  # no quantization == float
    errs = [float(jnp.max(jnp.abs(run(bits) - ref))) for bits in (4, 8, 16)]
    assert all(a > b for a, b in zip(errs, errs[1:])), errs  # monotone in the bit width
    assert errs[1] < 0.1 and errs[2] < 2e-3, errs


def test_quantized_lstm_state_is_on_grid_and_resumable():
    d_in, h = 4, 8
    x = jax.random.normal(jax.random.PRNGKey(3), (1, 18, d_in))
    w_ih, w_hh, b = _weights(4, d_in, h, 4)
    kw = dict(state_bits=4, input_bits=None)  # dynamic input scales would differ per chunk
    hs, fin = quantized_lstm(x, w_ih, w_hh, b, return_final_state=True, **kw)
    np.testing.assert_allclose(hs * 7, jnp.round(hs * 7), atol=1e-5)  # h on k/7
    np.testing.assert_allclose(fin.c * 7 / 4, jnp.round(fin.c * 7 / 4), atol=1e-5)
    h1, s1 = quantized_lstm(x[:, :9], w_ih, w_hh, b, return_final_state=True, **kw)
    h2 = quantized_lstm(x[:, 9:], w_ih, w_hh, b, initial_state=LSTMState(*s1), **kw)
    np.testing.assert_allclose(jnp.concatenate([h1, h2], 1), hs, atol=1e-6)
    g = jax.grad(lambda w: jnp.sum(quantized_lstm(x[:, :9], w, w_hh, b, weight_bits=4)))(w_ih)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0
