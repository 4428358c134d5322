"""Tests for lib.ops.conv.causal.causal_conv1d: forms, streaming step, state, resets, causality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.conv import causal as conv

cc = jax.jit(conv.causal_conv1d, static_argnames=("return_final_state", "activation", "method"))


def _inputs(length, k=4, d=3, b=2, seed=0):
    kx, kw, kb, ks = jax.random.split(jax.random.PRNGKey(seed), 4)
    x = jax.random.normal(kx, (b, length, d))
    w = jax.random.normal(kw, (k, d))
    bias = jax.random.normal(kb, (d,))
    state = jax.random.normal(ks, (b, k - 1, d))
    return x, w, bias, state


def _naive(x, w, bias, state):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    k = w.shape[0]
    xp = np.concatenate([np.asarray(state, np.float64), x], 1)
    y = np.zeros_like(x) + np.asarray(bias, np.float64)
    for t in range(x.shape[1]):
        for j in range(k):
            y[:, t] += w[k - 1 - j] * xp[:, t + k - 1 - j]
    return y


@pytest.mark.parametrize("length", [1, 37])
@pytest.mark.parametrize("method", ["shift", "conv"])
def test_forms_match_numpy_values_and_grads(length, method):
    x, w, bias, state = _inputs(length)
    y = cc(x, w, bias, initial_state=state, method=method)
    np.testing.assert_allclose(y, _naive(x, w, bias, state), rtol=1e-5, atol=1e-5)

    def loss(x, w, bias, state, method):
        y = cc(x, w, bias, initial_state=state, activation="silu", method=method)
        return jnp.sum(jnp.sin(y))

    ref = jax.grad(loss, (0, 1, 2, 3))(x, w, bias, state, "shift")
    got = jax.grad(loss, (0, 1, 2, 3))(x, w, bias, state, method)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


def test_long_sequence_and_bfloat16():
    x, w, bias, _ = _inputs(4096, d=2, b=1)
    y32 = cc(x, w, bias, method="conv")
    np.testing.assert_allclose(y32, cc(x, w, bias, method="shift"), atol=1e-5)
    y16 = cc(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16), bias, method="conv")
    assert y16.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(y16, np.float32)))
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, rtol=5e-2, atol=5e-2)


def test_step_equals_full_and_final_state():
    x, w, bias, state = _inputs(9)
    full, last = cc(x, w, bias, initial_state=state, activation="silu", return_final_state=True)
    st = conv.ConvState(x=state)
    outs = []
    for t in range(9):
        st, y_t = conv.causal_conv1d_step(st, x[:, t], w, bias, activation="silu")
        outs.append(y_t)
    np.testing.assert_allclose(jnp.stack(outs, 1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(st.x, last)
    np.testing.assert_allclose(last, x[:, -3:])
    zero = conv.causal_conv1d_init_state(2, 4, 3)
    assert zero.x.shape == (2, 3, 3)


def test_chunked_calls_with_carried_state_equal_one_call():
    x, w, bias, _ = _inputs(20)
    full = cc(x, w, bias)
    y1, s1 = cc(x[:, :7], w, bias, return_final_state=True)
    y2 = cc(x[:, 7:], w, bias, initial_state=s1)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), full, rtol=1e-5, atol=1e-6)


def test_segment_ids_equal_separate_sequences():
    x, w, bias, _ = _inputs(15, b=1)
    seg = jnp.array([[0] * 5 + [1] * 2 + [2] * 8])
    y = cc(x, w, bias, segment_ids=seg)
    parts = [cc(x[:, lo:hi], w, bias) for lo, hi in [(0, 5), (5, 7), (7, 15)]]
    np.testing.assert_allclose(y, jnp.concatenate(parts, 1), rtol=1e-5, atol=1e-6)


def test_causality_by_gradient():
    x, w, bias, _ = _inputs(12)
    g = jax.grad(lambda x: jnp.sum(cc(x, w, bias, method="conv")[:, 6]))(x)
    assert np.all(np.asarray(g[:, 7:]) == 0)
    assert np.all(np.abs(np.asarray(g[:, 3:7])) > 0)


def test_bad_inputs():
    x, w, bias, state = _inputs(5)
    with pytest.raises(ValueError, match="`x`"):
        conv.causal_conv1d(x[0], w)
    with pytest.raises(ValueError, match="`weight`"):
        conv.causal_conv1d(x, w[:, :2])
    with pytest.raises(ValueError, match="`bias`"):
        conv.causal_conv1d(x, w, bias[:2])
    with pytest.raises(ValueError, match="`initial_state`"):
        conv.causal_conv1d(x, w, initial_state=state[:, :2])
    with pytest.raises(ValueError, match="method"):
        conv.causal_conv1d(x, w, method="fft")
