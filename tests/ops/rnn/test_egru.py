"""Tests for lib.ops.rnn.egru: event-based GRU vs a NumPy loop, forms, sparsity, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.rnn import egru as rnn_egru


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _weights(key, d, h, thr=0.3):
    ks = jax.random.split(key, 4)
    w_ih = jax.random.normal(ks[0], (d, 3 * h)) / np.sqrt(d)
    w_hh = jax.random.normal(ks[1], (h, 3 * h)) / np.sqrt(h)
    b_ih = 0.1 * jax.random.normal(ks[2], (3 * h,))
    b_hh = 0.1 * jax.random.normal(ks[3], (3 * h,))
    return w_ih, w_hh, b_ih, b_hh, jnp.full((h,), thr)


def _np_egru(x, w_ih, w_hh, b_ih, b_hh, thr, c, y):
    out = []
    for t in range(x.shape[1]):
        xr, xz, xn = np.split(x[:, t] @ w_ih + b_ih, 3, axis=-1)
        hr, hz, hn = np.split(y @ w_hh + b_hh, 3, axis=-1)
        r, z = _sig(xr + hr), _sig(xz + hz)
        n = np.tanh(xn + r * hn)
        c = (1 - z) * n + z * c
        e = (c - thr >= 0).astype(c.dtype)
        y = e * c
        c = c - e * thr
        out.append(y)
    return np.stack(out, 1), c, y


@pytest.mark.parametrize("with_state", [False, True])
def test_matches_numpy_loop(with_state):
    b, l, d, h = 2, 13, 3, 6
    ws = _weights(jax.random.PRNGKey(0), d, h)
    x = 2.0 * jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    c0 = 0.2 * jax.random.normal(jax.random.PRNGKey(2), (b, h)) if with_state else jnp.zeros((b, h))
    y0 = jnp.where(c0 > 0.1, c0, 0.0)
    state = rnn_egru.EGRUState(c0, y0) if with_state else None
    want_y, want_c, want_last = _np_egru(*(np.float64(a) for a in (x, *ws, c0, y0)))
    assert 0 < np.mean(want_y == 0) < 1  # some events, some silence
    run = jax.jit(rnn_egru.egru, static_argnames=("return_final_state", "method"))
    for method in ("ref", "scan"):
        y, fin = run(x, *ws, initial_state=state, return_final_state=True, method=method)
        np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fin.c, want_c, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fin.y, want_last, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length", [1, 37, 4096])
def test_hoisted_matches_ref_values_and_grads(length):
    b, d, h = 1, 2, 3
    ws = _weights(jax.random.PRNGKey(length), d, h, thr=0.2)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, length, d))
    w = jnp.cos(jnp.arange(b * length * h, dtype=jnp.float32)).reshape(b, length, h)

    @jax.jit
    def both(x, ws):
        out = []
        for m in ("ref", "scan"):
            loss = lambda x, ws, m=m: jnp.sum(w * rnn_egru.egru(x, *ws, method=m))
            out.append(jax.value_and_grad(loss, argnums=(0, 1))(x, ws))
        return out

    (v_ref, g_ref), (v, g) = both(x, ws)
    assert np.isfinite(v)
    np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-4)
    for a, r in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)
    if length > 1:  # the surrogate lets gradient reach the weights and the thresholds
        assert np.any(g[1][0] != 0) and np.any(g[1][4] != 0)


def test_surrogate_choice_changes_only_the_gradient():
    ws = _weights(jax.random.PRNGKey(0), 3, 4, thr=0.2)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 9, 3))
    f = lambda x, s: rnn_egru.egru(x, *ws, surrogate=s)
    both = jax.jit(lambda x: (f(x, None), f(x, "fast_sigmoid")))
    y1, y2 = both(x)
    np.testing.assert_array_equal(y1, y2)
    grad = lambda s: jax.grad(lambda x: f(x, s).sum())
    grads = jax.jit(lambda x: (grad(None)(x), grad("fast_sigmoid")(x)))
    g1, g2 = grads(x)
    assert not np.allclose(g1, g2)


def test_activity_sparsity_follows_threshold():
    ws = _weights(jax.random.PRNGKey(0), 4, 16)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 50, 4))
    run = jax.jit(lambda thr: rnn_egru.egru(x, *ws[:4], thr))
    sparsity = [float(rnn_egru.activity_sparsity(run(jnp.full((16,), t)))) for t in (0.0, 0.3, 2.0)]
    assert sparsity[0] < sparsity[1] < sparsity[2] == 1.0  # tanh-bounded c never reaches 2
    assert rnn_egru.activity_sparsity(jnp.array([0.0, 1.0, 0.0, 2.0])) == 0.5


def test_bfloat16_and_step():
    b, l, d, h = 2, 11, 3, 4
    ws = _weights(jax.random.PRNGKey(0), d, h, thr=0.25)
    x = jax.random.normal(jax.random.PRNGKey(1), (b, l, d))
    run = jax.jit(rnn_egru.egru)
    y = run(x, *ws)
    got = run(x.astype(jnp.bfloat16), *(w.astype(jnp.bfloat16) for w in ws))
    assert got.dtype == jnp.bfloat16
    # events near the threshold can flip in bf16; most outputs must agree
    close = np.isclose(np.float32(got.astype(jnp.float32)), y, atol=5e-2)
    assert close.mean() > 0.9
    s = rnn_egru.egru_init_state(b, h)
    step = jax.jit(rnn_egru.egru_step)
    for t in range(l):
        s, y_t = step(s, x[:, t], *ws)
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-6)


def test_causal_by_gradients():
    ws = _weights(jax.random.PRNGKey(0), 2, 5, thr=0.1)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 12, 2))
    t0 = 6
    g = jax.jit(jax.grad(lambda x: rnn_egru.egru(x, *ws)[:, t0].sum()))(x)
    assert np.all(g[:, t0 + 1 :] == 0) and np.any(g[:, : t0 + 1] != 0)


def test_bad_inputs_name_the_argument():
    ws = _weights(jax.random.PRNGKey(0), 3, 4)
    x = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`x`"):
        rnn_egru.egru(x[0], *ws)
    with pytest.raises(ValueError, match="`w_ih`"):
        rnn_egru.egru(jnp.zeros((2, 5, 2)), *ws)
    with pytest.raises(ValueError, match="`b_hh`"):
        rnn_egru.egru(x, ws[0], ws[1], ws[2], ws[3][:3], ws[4])
    with pytest.raises(ValueError, match="initial_state.y"):
        bad = rnn_egru.EGRUState(jnp.zeros((2, 4)), jnp.zeros((2, 3)))
        rnn_egru.egru(x, *ws, initial_state=bad)
    with pytest.raises(ValueError, match="method"):
        rnn_egru.egru(x, *ws, method="sparse")
