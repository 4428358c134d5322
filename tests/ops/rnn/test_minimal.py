"""Tests for lib.ops.rnn.minimal: minGRU / minLSTM, sequential vs linear_recurrence vs log-space."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.rnn import minimal as rnn_min


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _inputs(key, b, l, d, dtype=jnp.float32):
    ks = jax.random.split(key, 4)
    kf = 2.0 * jax.random.normal(ks[0], (b, l, d))
    ki = 2.0 * jax.random.normal(ks[1], (b, l, d))
    ht = rnn_min.g(jax.random.normal(ks[2], (b, l, d)))  # positive, as in the paper
    h0 = rnn_min.g(jax.random.normal(ks[3], (b, d)))
    return kf.astype(dtype), ki.astype(dtype), ht.astype(dtype), h0


def _call(cell, method, kf, ki, ht, h0, **kw):
    if cell == "gru":
        return rnn_min.min_gru(kf, ht, initial_state=h0, method=method, **kw)
    return rnn_min.min_lstm(kf, ki, ht, initial_state=h0, method=method, **kw)


_jcall = jax.jit(_call, static_argnums=(0, 1), static_argnames=("chunk_size",))


def test_min_gru_and_min_lstm_match_numpy_loop():
    kf, ki, ht, h0 = (np.float64(a) for a in _inputs(jax.random.PRNGKey(0), 2, 7, 3))
    hg, hl = h0.copy(), h0.copy()
    want_g, want_l = [], []
    for t in range(7):
        z = _sig(kf[:, t])
        hg = (1 - z) * hg + z * ht[:, t]
        f, i = _sig(kf[:, t]), _sig(ki[:, t])
        hl = f / (f + i) * hl + i / (f + i) * ht[:, t]
        want_g.append(hg)
        want_l.append(hl)
    args = [jnp.asarray(a, jnp.float32) for a in (kf, ki, ht, h0)]
    for method in ("ref", "scan", "log"):
        np.testing.assert_allclose(_jcall("gru", method, *args), np.stack(want_g, 1), rtol=1e-5)
        np.testing.assert_allclose(_jcall("lstm", method, *args), np.stack(want_l, 1), rtol=1e-5)


@pytest.mark.parametrize(
    "cell,length,with_state",
    [
        ("gru", 1, False),
        ("lstm", 1, True),
        ("gru", 37, True),
        ("lstm", 37, False),
        ("gru", 4096, False),
        ("lstm", 4096, True),
    ],
)
def test_parallel_forms_match_ref(cell, length, with_state):
    b, d = 1, 3
    kf, ki, ht, h0 = _inputs(jax.random.PRNGKey(length), b, length, d)
    h0 = h0 if with_state else None
    w = jnp.cos(jnp.arange(b * length * d, dtype=jnp.float32)).reshape(b, length, d)

    @jax.jit
    def all_forms(kf, ki, ht, h0):
        out = {}
        for m in ("ref", "scan", "log"):
            loss = lambda *a, m=m: jnp.sum(w * _call(cell, m, *a))
            out[m] = jax.value_and_grad(loss, argnums=(0, 1, 2, 3) if with_state else (0, 1, 2))(
                kf, ki, ht, h0
            )
        return out

    out = all_forms(kf, ki, ht, h0)
    v_ref, g_ref = out["ref"]
    for m in ("scan", "log"):
        v, gr = out[m]
        assert np.isfinite(v), m
        np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-4, err_msg=m)
        for a, r in zip(gr, g_ref):
            assert np.all(np.isfinite(a)), m
            np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4, err_msg=m)


def test_log_form_chunk_size_does_not_change_result():
    kf, ki, ht, h0 = _inputs(jax.random.PRNGKey(3), 2, 37, 4)
    run = jax.jit(
        lambda *a: (
            [_call("lstm", "ref", *a)]
            + [_call("lstm", "log", *a, chunk_size=c) for c in (1, 5, 100)]
        )
    )
    want, *got = run(kf, ki, ht, h0)
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_final_state_and_bfloat16():
    kf, ki, ht, h0 = _inputs(jax.random.PRNGKey(4), 2, 37, 8)
    bf = [a.astype(jnp.bfloat16) for a in (kf, ki, ht)]

    @jax.jit
    def forms():
        want = rnn_min.min_gru(kf, ht, initial_state=h0, method="ref")
        out = {}
        for m in ("scan", "log"):
            _, fin = rnn_min.min_gru(kf, ht, initial_state=h0, return_final_state=True, method=m)
            out[m] = (fin, _call("gru", m, *bf, h0))
        return want, out

    want, out = forms()
    for m, (fin, got) in out.items():
        np.testing.assert_allclose(fin, want[:, -1], rtol=1e-5, err_msg=m)
        assert got.dtype == jnp.bfloat16
        np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=2e-2, atol=2e-2)


def test_step_matches_full():
    kf, ki, ht, h0 = _inputs(jax.random.PRNGKey(5), 2, 9, 3)
    yg = _jcall("gru", "auto", kf, ki, ht, h0)
    yl = _jcall("lstm", "auto", kf, ki, ht, h0)
    sg, sl = h0, h0
    gru_step, lstm_step = jax.jit(rnn_min.min_gru_step), jax.jit(rnn_min.min_lstm_step)
    for t in range(9):
        sg, og = gru_step(sg, kf[:, t], ht[:, t])
        sl, ol = lstm_step(sl, kf[:, t], ki[:, t], ht[:, t])
        np.testing.assert_allclose(og, yg[:, t], rtol=1e-5)
        np.testing.assert_allclose(ol, yl[:, t], rtol=1e-5)


@pytest.mark.parametrize("method", ["ref", "scan", "log"])
def test_causal_by_gradients(method):
    kf, ki, ht, h0 = _inputs(jax.random.PRNGKey(6), 1, 16, 2)
    t0 = 6
    grads = jax.jit(
        jax.grad(
            lambda kf, ki, ht: _call("lstm", method, kf, ki, ht, None)[:, t0].sum(),
            argnums=(0, 1, 2),
        )
    )(kf, ki, ht)
    for gr in grads:
        assert np.all(gr[:, t0 + 1 :] == 0)
        assert np.any(gr[:, : t0 + 1] != 0)


def test_g_and_log_g():
    x = np.linspace(-30, 5, 101, dtype=np.float32)
    np.testing.assert_allclose(jnp.exp(rnn_min.log_g(x)), rnn_min.g(x), rtol=1e-5)
    want = np.where(x >= 0, x + 0.5, _sig(np.float64(x)))
    np.testing.assert_allclose(rnn_min.g(x), want, rtol=1e-6)
    assert np.all(np.isfinite(jax.grad(lambda x: rnn_min.log_g(x).sum())(x)))


def test_bad_inputs_name_the_argument():
    z = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`z_logits`"):
        rnn_min.min_gru(z[0], z[0])
    with pytest.raises(ValueError, match="`h_tilde`"):
        rnn_min.min_gru(z, z[:, :4])
    with pytest.raises(ValueError, match="`i_logits`"):
        rnn_min.min_lstm(z, z[..., :2], z)
    with pytest.raises(ValueError, match="initial_state"):
        rnn_min.min_gru(z, z, initial_state=jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="method"):
        rnn_min.min_gru(z, z, method="fft")
