"""Tests for lib.ops.spiking.neurons: IF, PLIF, ALIF, synaptic, recurrent and no-reset LIF."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.spiking import neurons as sn
from lib.ops.spiking.core import lif


def _heaviside(x):
    return (x >= 0).astype(np.float64)


def _rand(seed, shape, scale=0.8, shift=0.3):
    return jax.random.normal(jax.random.PRNGKey(seed), shape) * scale + shift


def test_if_and_plif_match_numpy():
    current = _rand(0, (2, 13, 4))
    c = np.asarray(current, np.float64)
    # IF: no leak, subtract reset.
    v, want = np.zeros((2, 4)), []
    for t in range(13):
        v = v + c[:, t]
        s = _heaviside(v - 1.0)
        v = v - s
        want.append(s)
    np.testing.assert_array_equal(sn.if_neuron(current), np.stack(want, 1))
    # PLIF: v += k (I - v), hard reset.
    w = np.array([-1.0, 0.0, 1.0, 2.0])
    k = 1 / (1 + np.exp(-w))
    v, want = np.zeros((2, 4)), []
    for t in range(13):
        v = v + k * (c[:, t] - v)
        s = _heaviside(v - 0.5)
        v = v * (1 - s)
        want.append(s)
    got = sn.plif(current, decay_logit=jnp.asarray(w, jnp.float32), threshold=0.5)
    np.testing.assert_array_equal(got, np.stack(want, 1))


def test_plif_decay_gets_gradient_and_step_matches():
    current = _rand(1, (2, 9, 3))
    w = jnp.zeros((3,))
    g = jax.grad(lambda w: sn.plif(current, decay_logit=w, threshold=0.4).sum())(w)
    assert np.all(np.isfinite(g)) and np.any(np.abs(g) > 0)
    full = sn.plif(current, decay_logit=w, threshold=0.4)
    v = jnp.zeros((2, 3))
    step = jax.jit(lambda v, i: sn.plif_step(v, i, decay_logit=w, threshold=0.4))
    for t in range(9):
        v, s = step(v, current[:, t])
        np.testing.assert_array_equal(s, full[:, t])


def test_alif_matches_numpy_and_step():
    current = _rand(2, (3, 17, 5), shift=0.5)
    beta, rho, gamma, thr = 0.9, 0.8, 1.5, 1.0
    c = np.asarray(current, np.float64)
    v, a, want = np.zeros((3, 5)), np.zeros((3, 5)), []
    for t in range(17):
        v = beta * v + c[:, t]
        A = thr + gamma * a
        s = _heaviside(v - A)
        v = v - A * s
        a = rho * a + (1 - rho) * s
        want.append(s)
    got, state = sn.alif(current, beta=beta, rho=rho, gamma=gamma, return_final_state=True)
    np.testing.assert_array_equal(got, np.stack(want, 1))
    np.testing.assert_allclose(state.a, a, rtol=1e-5, atol=1e-6)
    # Adaptation lowers the firing rate compared with plain LIF.
    assert got.sum() < lif(current, beta=beta).sum()
    st = sn.alif_init_state(3, 5)
    step = jax.jit(lambda st, i: sn.alif_step(st, i, beta=beta, rho=rho, gamma=gamma))
    for t in range(17):
        st, s = step(st, current[:, t])
        np.testing.assert_array_equal(s, got[:, t])


def test_synaptic_matches_numpy_and_initial_state():
    current = _rand(3, (2, 11, 2, 3))
    c = np.asarray(current, np.float64)
    i, v, want = np.full((2, 2, 3), 0.2), np.full((2, 2, 3), 0.1), []
    for t in range(11):
        i = 0.7 * i + c[:, t]
        v = 0.85 * v + i
        s = _heaviside(v - 1.0)
        v = v * (1 - s)
        want.append(s)
    init = sn.SynapticState(jnp.full((2, 2, 3), 0.2), jnp.full((2, 2, 3), 0.1))
    got, st = sn.synaptic_lif(
        current, alpha=0.7, beta=0.85, reset="zero", initial_state=init, return_final_state=True
    )
    np.testing.assert_array_equal(got, np.stack(want, 1))
    np.testing.assert_allclose(st.v, v, rtol=1e-5, atol=1e-6)


def test_recurrent_lif_matches_numpy_and_gradient_reaches_weights():
    current = _rand(4, (2, 10, 6))
    w = jax.random.normal(jax.random.PRNGKey(5), (6, 6)) * 0.5
    c, wn = np.asarray(current, np.float64), np.asarray(w, np.float64)
    v, s, want = np.zeros((2, 6)), np.zeros((2, 6)), []
    for t in range(10):
        v = 0.9 * v + c[:, t] + s @ wn
        s = _heaviside(v - 1.0)
        v = v - s
        want.append(s)
    got = sn.recurrent_lif(current, w, beta=0.9)
    np.testing.assert_array_equal(got, np.stack(want, 1))
    g = jax.grad(lambda w: sn.recurrent_lif(current, w, beta=0.9).sum())(w)
    assert np.any(np.abs(g) > 0)
    with pytest.raises(ValueError, match="w_rec"):
        sn.recurrent_lif(current, jnp.zeros((5, 6)), beta=0.9)


@pytest.mark.parametrize("length, dtype", [(1, jnp.float32), (33, jnp.float32), (33, jnp.bfloat16)])
def test_lif_no_reset_equals_lif_reset_none(length, dtype):
    current = _rand(6, (2, length, 3)).astype(dtype)
    v0 = jnp.full((2, 3), 0.3)
    beta = jnp.array([0.5, 0.9, 1.0])
    w = jax.random.normal(jax.random.PRNGKey(7), (2, length, 3))

    def loss(fn, c, b):
        return jnp.sum(fn(c, b).astype(jnp.float32) * w)

    par = lambda c, b: sn.lif_no_reset(c, beta=b, v0=v0, surrogate="arctan")
    ref = lambda c, b: lif(c, beta=b, v0=v0, reset="none", surrogate="arctan")
    s_par, s_ref = par(current, beta), ref(current, beta)
    mismatch = np.mean(np.asarray(s_par, np.float32) != np.asarray(s_ref, np.float32))
    assert mismatch <= (0 if dtype == jnp.float32 else 0.02)
    if dtype == jnp.float32:
        g_par = jax.jit(jax.grad(lambda c, b: loss(par, c, b), argnums=(0, 1)))(current, beta)
        g_ref = jax.jit(jax.grad(lambda c, b: loss(ref, c, b), argnums=(0, 1)))(current, beta)
        for a, b in zip(g_par, g_ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_lif_no_reset_long_sequence_parallel_method():
    current = jax.random.uniform(jax.random.PRNGKey(8), (1, 4096, 2)) * 0.1
    s_par, v = sn.lif_no_reset(
        current, beta=0.99, threshold=5.0, method="chunked", return_final_state=True
    )
    s_ref = lif(current, beta=0.99, threshold=5.0, reset="none")
    assert np.isfinite(np.asarray(v)).all()
    assert np.mean(np.asarray(s_par) != np.asarray(s_ref)) < 1e-3


def test_leaky_integrator_matches_loop():
    current = _rand(9, (2, 8, 3))
    v = sn.leaky_integrator(current, beta=0.6)
    want, acc = [], np.zeros((2, 3))
    for t in range(8):
        acc = 0.6 * acc + np.asarray(current[:, t], np.float64)
        want.append(acc)
    np.testing.assert_allclose(v, np.stack(want, 1), rtol=1e-5, atol=1e-6)


def test_neuron_bad_inputs():
    with pytest.raises(ValueError, match="reset"):
        sn.alif(jnp.ones((2, 3, 4)), beta=0.9, rho=0.9, gamma=1.0, reset="hard")
    with pytest.raises(ValueError, match="rank"):
        sn.synaptic_lif(jnp.ones((4,)), alpha=0.9, beta=0.9)
    with pytest.raises(TypeError, match="floating"):
        sn.leaky_integrator(jnp.ones((2, 3), jnp.int32), beta=0.5)
