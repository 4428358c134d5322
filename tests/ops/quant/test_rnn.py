"""Quantized LSTM/GRU (weights, activations, carry) converge to float as bits grow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.quant.rnn import quantized_gru, quantized_lstm
from lib.ops.rnn import cells as rnn
from lib.ops.rnn.cells import LSTMState, gru, lstm


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
        ref, op, biases = lstm(x, w_ih, w_hh, b), quantized_lstm, (b,)
    else:
        w_ih, w_hh, b = _weights(2, d_in, h, 3)
        ref, op, biases = gru(x, w_ih, w_hh, b, b), quantized_gru, (b, b)
    bits_kw = lambda bits: dict(weight_bits=bits, input_bits=bits, act_bits=bits, state_bits=bits)
    run = jax.jit(lambda bits: op(x, w_ih, w_hh, *biases, **bits_kw(bits)), static_argnums=0)
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
    # both halves with an explicit initial state: one compile serves them
    z = jnp.zeros((1, h))
    half = lambda xs, s: quantized_lstm(
        xs, w_ih, w_hh, b, initial_state=s, return_final_state=True, **kw
    )
    h1, s1 = half(x[:, :9], LSTMState(z, z))
    h2, _ = half(x[:, 9:], LSTMState(*s1))
    np.testing.assert_allclose(jnp.concatenate([h1, h2], 1), hs, atol=1e-6)
    g = jax.grad(lambda w: jnp.sum(quantized_lstm(x[:, :9], w, w_hh, b, weight_bits=4)))(w_ih)
    assert bool(jnp.all(jnp.isfinite(g))) and float(jnp.abs(g).sum()) > 0


def test_carry_fn_hook_rounds_the_full_and_step_forms_alike():
    """The float cells' `carry_fn` hook (the quantized carry of `lib.nn.rnn.mixers`), on the LSTM:
    the full form and the step form round the carry alike, and the carry ends on the grid
    (GRU's and EGRU's hooks: step == full with a quantized carry in tests/nn/rnn/test_quant)."""
    d_in, h = 5, 6
    x = jax.random.normal(jax.random.PRNGKey(5), (2, 9, d_in))
    lw = _weights(6, d_in, h, 4)
    grid = lambda v: jnp.round(v * 16) / 16  # the carry on k/16
    carry_fn = lambda s: LSTMState(grid(s.h), grid(s.c))

    @jax.jit
    def run():
        full = lstm(x, *lw, carry_fn=carry_fn, method="ref", return_final_state=True)
        z = jnp.zeros((2, h))
        step = lambda s, x_t: rnn.lstm_step(s, x_t, *lw, carry_fn=carry_fn)
        final, y = jax.lax.scan(step, LSTMState(z, z), jnp.swapaxes(x, 0, 1))
        return full, (jnp.swapaxes(y, 0, 1), final)

    full, steps = run()
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(steps)):
        np.testing.assert_allclose(a, b, atol=1e-6)
        np.testing.assert_allclose(a * 16, jnp.round(a * 16), atol=1e-4)
    assert float(jnp.max(jnp.abs(full[0]))) > 0


def test_min_carry_quant_with_identity_quantizers_is_the_float_op():
    """minGRU/minLSTM with a quantized carry (linear-space gates), given no quantizer, are the
    float ops (both minGRU forms), and the methods a quantized carry cannot run are refused."""
    from lib.ops.quant import rnn as q
    from lib.ops.rnn import minimal as rnn_min

    k = jax.random.normal(jax.random.PRNGKey(8), (3, 2, 9, 6))
    ht = rnn_min.g(k[2])

    @jax.jit
    def run():
        return {
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
