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


def test_carry_quant_scans_with_identity_quantizers_are_the_float_ops():
    """The shared carry-quantized scans, with no quantizer, are the float cells (both forms)."""
    from lib.ops import quant_rnn as q
    from lib.ops import rnn_egru, rnn_min

    d_in, h = 5, 6
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 9, d_in))
    lw = _weights(6, d_in, h, 4)
    gw = _weights(7, d_in, h, 3)
    thr = jnp.full((h,), 0.1)
    k = jax.random.normal(jax.random.PRNGKey(8), (3, 2, 9, h))
    ht = rnn_min.g(k[2])

    @jax.jit
    def run():  # the two LSTM forms, the two minGRU forms (sequential, parallel), one each else
        ref_lstm = lstm(x, *lw)
        return {
            "lstm ref": (q.lstm_carry_quant(x, *lw, method="ref"), ref_lstm),
            "lstm scan": (q.lstm_carry_quant(x, *lw, method="scan"), ref_lstm),
            "gru": (q.gru_carry_quant(x, *gw, gw[2]), gru(x, *gw, gw[2])),
            "egru": (
                q.egru_carry_quant(x, *gw, gw[2], thr, method="ref"),
                rnn_egru.egru(x, *gw, gw[2], thr),
            ),
            "min_gru ref": (
                q.min_gru_carry_quant(k[0], ht, method="ref"),
                rnn_min.min_gru_ref(k[0], ht),
            ),
            "min_gru scan": (q.min_gru_carry_quant(k[0], ht), rnn_min.min_gru_ref(k[0], ht)),
            "min_lstm": (
                q.min_lstm_carry_quant(k[0], k[1], ht, method="ref"),
                rnn_min.min_lstm_ref(k[0], k[1], ht),
            ),
        }

    for key, (got, want) in run().items():
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=str(key))
    with pytest.raises(ValueError, match="nonlinear in h"):
        q.min_gru_carry_quant(k[0], ht, carry_fn=jnp.round, method="scan")
    with pytest.raises(ValueError, match="unknown method"):
        q.min_gru_carry_quant(k[0], ht, method="fft")
