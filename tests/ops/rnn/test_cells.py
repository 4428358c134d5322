"""Tests for lib.ops.rnn.cells: LSTM and GRU against a NumPy loop, hoisted vs reference, step, errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.rnn import cells as rnn


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _np_lstm(x, w_ih, w_hh, b, h, c):
    """Independent NumPy loop (float64) of the LSTM equations."""
    ys = []
    for t in range(x.shape[1]):
        z = x[:, t] @ w_ih + h @ w_hh + b
        i, f, g, o = np.split(z, 4, axis=-1)
        c = _sig(f) * c + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        ys.append(h)
    return np.stack(ys, 1), h, c


def _np_gru(x, w_ih, w_hh, b_ih, b_hh, h):
    ys = []
    for t in range(x.shape[1]):
        xr, xz, xn = np.split(x[:, t] @ w_ih + b_ih, 3, axis=-1)
        hr, hz, hn = np.split(h @ w_hh + b_hh, 3, axis=-1)
        r, z = _sig(xr + hr), _sig(xz + hz)
        n = np.tanh(xn + r * hn)
        h = (1 - z) * n + z * h
        ys.append(h)
    return np.stack(ys, 1), h


def _weights(key, d, h, k, dtype=jnp.float32):
    ks = jax.random.split(key, 4)
    s = 1.0 / np.sqrt(h)
    w_ih = jax.random.uniform(ks[0], (d, k * h), dtype, -s, s)
    w_hh = jax.random.uniform(ks[1], (h, k * h), dtype, -s, s)
    b1 = jax.random.uniform(ks[2], (k * h,), dtype, -s, s)
    b2 = jax.random.uniform(ks[3], (k * h,), dtype, -s, s)
    return w_ih, w_hh, b1, b2


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_numpy_loop(with_state):
    b, l, d, h = 2, 9, 3, 5
    w_ih, w_hh, bias, _ = _weights(jax.random.PRNGKey(0), d, h, 4)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    h0 = jax.random.normal(jax.random.PRNGKey(2), (b, h)) if with_state else jnp.zeros((b, h))
    c0 = jax.random.normal(jax.random.PRNGKey(3), (b, h)) if with_state else jnp.zeros((b, h))
    state = rnn.LSTMState(h0, c0) if with_state else None
    want_y, want_h, want_c = _np_lstm(*(np.float64(a) for a in (x, w_ih, w_hh, bias, h0, c0)))
    run = jax.jit(rnn.lstm, static_argnames=("return_final_state", "method"))
    for method in ("ref", "scan"):
        y, fin = run(
            x, w_ih, w_hh, bias, initial_state=state, return_final_state=True, method=method
        )
        np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fin.h, want_h, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fin.c, want_c, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_state", [False, True])
def test_gru_matches_numpy_loop(with_state):
    b, l, d, h = 2, 9, 3, 5
    w_ih, w_hh, b_ih, b_hh = _weights(jax.random.PRNGKey(0), d, h, 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    h0 = jax.random.normal(jax.random.PRNGKey(2), (b, h)) if with_state else jnp.zeros((b, h))
    want_y, want_h = _np_gru(*(np.float64(a) for a in (x, w_ih, w_hh, b_ih, b_hh, h0)))
    run = jax.jit(rnn.gru, static_argnames=("return_final_state", "method"))
    for method in ("ref", "scan"):
        y, fin = run(
            x,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            initial_state=h0 if with_state else None,
            return_final_state=True,
            method=method,
        )
        np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fin, want_h, rtol=1e-5, atol=1e-5)


def _call(cell, method, x, ws, state):
    if cell == "lstm":
        return rnn.lstm(x, ws[0], ws[1], ws[2], initial_state=state, method=method)
    return rnn.gru(x, *ws, initial_state=state, method=method)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("length", [1, 37, 4096])
def test_hoisted_matches_ref_values_and_grads(cell, length):
    b, d, h = 1, 2, 3
    k = 4 if cell == "lstm" else 3
    ws = _weights(jax.random.PRNGKey(length), d, h, k)
    x = jax.random.normal(jax.random.PRNGKey(7), (b, length, d))
    h0 = 0.5 * jax.random.normal(jax.random.PRNGKey(8), (b, h))
    state = rnn.LSTMState(h0, -h0) if cell == "lstm" else h0

    def loss(method, x, ws, state):
        y = _call(cell, method, x, ws, state)
        return jnp.sum(y * jnp.cos(jnp.arange(y.size).reshape(y.shape)))

    grad = jax.jit(jax.value_and_grad(loss, argnums=(1, 2, 3)), static_argnums=0)
    v_ref, g_ref = grad("ref", x, ws, state)
    v_fast, g_fast = grad("scan", x, ws, state)
    assert np.isfinite(v_fast)
    np.testing.assert_allclose(v_fast, v_ref, rtol=1e-4, atol=1e-4)
    chex.assert_trees_all_close(g_fast, g_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_bfloat16_close_to_float32(cell):
    b, l, d, h = 2, 37, 4, 8
    k = 4 if cell == "lstm" else 3
    ws = _weights(jax.random.PRNGKey(0), d, h, k)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    call = jax.jit(_call, static_argnums=(0, 1))
    want = call(cell, "ref", x, ws, None)
    to_bf16 = lambda a: a.astype(jnp.bfloat16)
    got = call(cell, "auto", to_bf16(x), [to_bf16(w) for w in ws], None)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(jnp.float32), want, atol=3e-2)


def test_step_matches_full():
    b, l, d, h = 2, 11, 3, 4
    lw = _weights(jax.random.PRNGKey(0), d, h, 4)
    gw = _weights(jax.random.PRNGKey(1), d, h, 3)
    x = jax.random.normal(jax.random.PRNGKey(2), (b, l, d))
    y_l, y_g = jax.jit(lambda x: (rnn.lstm(x, *lw[:3]), rnn.gru(x, *gw)))(x)
    s = rnn.LSTMState(jnp.zeros((b, h)), jnp.zeros((b, h)))
    g = jnp.zeros((b, h))
    lstm_step, gru_step = jax.jit(rnn.lstm_step), jax.jit(rnn.gru_step)
    for t in range(l):
        s, yl_t = lstm_step(s, x[:, t], *lw[:3])
        g, yg_t = gru_step(g, x[:, t], *gw)
        np.testing.assert_allclose(yl_t, y_l[:, t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(yg_t, y_g[:, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_causal_by_gradients(cell):
    b, l, d, h, t0 = 1, 12, 2, 3, 5
    ws = _weights(jax.random.PRNGKey(0), d, h, 4 if cell == "lstm" else 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    g = jax.jit(jax.grad(lambda x: _call(cell, "auto", x, ws, None)[:, t0].sum()))(x)
    assert np.all(g[:, t0 + 1 :] == 0)
    assert np.any(g[:, : t0 + 1] != 0)


def test_swapped_activations():
    """A hard (piecewise-linear) sigmoid and a clipped identity reach the recurrence."""
    b, l, d, h = 2, 6, 3, 4
    w_ih, w_hh, bias, _ = _weights(jax.random.PRNGKey(0), d, h, 4)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    clip = lambda v: np.clip(v, -1, 1)
    y = rnn.lstm(
        x, w_ih, w_hh, bias, gate_fn=jax.nn.hard_sigmoid, cell_fn=lambda v: jnp.clip(v, -1, 1)
    )
    hh, cc = np.zeros((b, h)), np.zeros((b, h))
    xs, wi, wh, bb = (np.float64(a) for a in (x, w_ih, w_hh, bias))
    for t in range(l):
        i, f, g, o = np.split(xs[:, t] @ wi + hh @ wh + bb, 4, axis=-1)
        # jax.nn.hard_sigmoid is relu6(x + 3) / 6
        hs = lambda v: np.clip(v + 3, 0, 6) / 6
        cc = hs(f) * cc + hs(i) * clip(g)
        hh = hs(o) * clip(cc)
        np.testing.assert_allclose(y[:, t], hh, rtol=1e-5, atol=1e-5)


def test_bad_inputs_name_the_argument():
    w_ih, w_hh, bias, _ = _weights(jax.random.PRNGKey(0), 3, 4, 4)
    x = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`x`"):
        rnn.lstm(x[0], w_ih, w_hh, bias)
    with pytest.raises(ValueError, match="`w_ih`"):
        rnn.lstm(jnp.zeros((2, 5, 7)), w_ih, w_hh, bias)
    with pytest.raises(ValueError, match="`b`"):
        rnn.lstm(x, w_ih, w_hh, bias[:-1])
    with pytest.raises(ValueError, match="initial_state.c"):
        rnn.lstm(x, w_ih, w_hh, initial_state=rnn.LSTMState(jnp.zeros((2, 4)), jnp.zeros((1, 4))))
    with pytest.raises(ValueError, match="method"):
        rnn.lstm(x, w_ih, w_hh, method="pallas")
    gw = _weights(jax.random.PRNGKey(0), 3, 4, 3)
    with pytest.raises(ValueError, match="`w_hh`"):
        rnn.gru(x, gw[0], gw[1][:, :-1])
    with pytest.raises(ValueError, match="initial_state"):
        rnn.gru(x, *gw, initial_state=jnp.zeros((2, 5)))


def test_auto_hoists_the_projection_only_for_short_sequences_on_cpu():
    """`auto` follows the idle-CPU measurement in benchmarks/results/mixers_cpu.md."""
    from lib.ops.rnn.cells import resolve_method

    assert resolve_method("auto", 256) == "scan"
    assert resolve_method("auto", 4096) == "ref"
    assert resolve_method("scan", 4096) == "scan"
    with pytest.raises(ValueError, match="method"):
        resolve_method("fast", 10)
