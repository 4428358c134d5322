"""Tests for lib.ops.spiking.delays: fixed delays and DCLS learnable delays."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.spiking import delays as sd


def _numpy_delayed_dense(x, w, d):
    """y[b, t, o] = sum_i w[i, o] x[b, t - d[i, o], i], by loops."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    b, length, n_in = x.shape
    y = np.zeros((b, length, w.shape[1]))
    for i in range(n_in):
        for o in range(w.shape[1]):
            dd = int(d[i, o])
            y[:, dd:, o] += w[i, o] * x[:, : length - dd, i]
    return y


def test_delay_shift_matches_numpy_roll():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 4))
    delays = jnp.array([0, 1, 3, 9])
    y = sd.delay_shift(x, delays)
    for n, d in enumerate(np.asarray(delays)):
        want = np.concatenate([np.zeros((2, d)), np.asarray(x[:, : 9 - d, n])], 1)
        np.testing.assert_array_equal(y[:, :, n], want)


def test_integer_delays_equal_shifting_the_input():
    x = (jax.random.uniform(jax.random.PRNGKey(1), (2, 13, 5)) < 0.4).astype(jnp.float32)
    delays = jnp.array([0, 2, 4, 1, 6])
    # identity weights: the delayed dense layer is a per-channel shift
    kernel = sd.fixed_delay_kernel(jnp.eye(5), jnp.diag(delays) + 0 * jnp.eye(5, dtype=int), 6)
    y = sd.delayed_dense(x, kernel)
    np.testing.assert_allclose(y, sd.delay_shift(x, delays), atol=1e-6)


def test_fixed_delay_dense_matches_loops_and_step_form():
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    x = jax.random.normal(k[0], (3, 11, 4))
    w = jax.random.normal(k[1], (4, 6))
    d = jax.random.randint(k[2], (4, 6), 0, 5)
    kernel = sd.fixed_delay_kernel(w, d, 4)
    y = sd.delayed_dense(x, kernel)
    np.testing.assert_allclose(y, _numpy_delayed_dense(x, w, np.asarray(d)), rtol=1e-5, atol=1e-5)
    buf = sd.delay_buffer_init(3, 5, 4)
    step = jax.jit(sd.delayed_dense_step)
    for t in range(11):
        buf, y_t = step(buf, x[:, t], kernel)
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-5)


def test_dcls_kernel_properties_and_rounding():
    w = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    p = jnp.array([[0.0, 2.0], [3.6, 1.2]])
    k = sd.dcls_kernel(w, p, 4, sigma=1.0)
    np.testing.assert_allclose(k.sum(0), w, rtol=1e-5)  # mass preserved
    # narrow sigma at integer positions -> the fixed kernel; rounding gives the same
    p_int = jnp.array([[0.0, 2.0], [4.0, 1.0]])
    narrow = sd.dcls_kernel(w, p_int, 4, sigma=0.05)
    fixed = sd.fixed_delay_kernel(w, p_int.astype(int), 4)
    np.testing.assert_allclose(narrow, fixed, atol=1e-6)
    np.testing.assert_allclose(sd.dcls_rounded_kernel(w, p_int + 0.3, 4), fixed)
    # centre of mass sits at the position when it is far from the edges
    taps = jnp.arange(5.0)
    com = jnp.sum(k[:, 1, 1] * taps) / k[:, 1, 1].sum()
    assert abs(float(com) - 1.2) < 0.15


def test_gradients_reach_positions_and_match_finite_differences():
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    x = jax.random.normal(k[0], (2, 16, 3))
    w = jax.random.normal(k[1], (3, 4))
    p = jax.random.uniform(k[2], (3, 4), minval=0.5, maxval=6.5)
    target = jax.random.normal(k[3], (2, 16, 4))

    def loss(p):
        y = sd.delayed_dense(x, sd.dcls_kernel(w, p, 7, sigma=1.5))
        return jnp.mean((y - target) ** 2)

    loss = jax.jit(loss)
    g = jax.grad(loss)(p)
    assert np.all(np.abs(np.asarray(g)) > 0)
    eps = 1e-2
    for idx in [(0, 0), (1, 2), (2, 3)]:
        e = jnp.zeros_like(p).at[idx].set(eps)
        fd = (loss(p + e) - loss(p - e)) / (2 * eps)
        np.testing.assert_allclose(g[idx], fd, rtol=2e-2, atol=1e-4)


def test_learning_a_delay_by_gradient_descent():
    """A single synapse must learn to delay its input by 5 steps."""
    x = jax.random.normal(jax.random.PRNGKey(4), (4, 40, 1))
    target = sd.delay_shift(x, jnp.array([5]))
    w = jnp.ones((1, 1))

    def loss(p, sigma):
        return jnp.mean((sd.delayed_dense(x, sd.dcls_kernel(w, p, 8, sigma)) - target) ** 2)

    grad = jax.jit(jax.grad(loss))
    p = jnp.full((1, 1), 2.0)
    for step in range(100):
        p = p - 1.0 * grad(p, sd.dcls_sigma(step, 100, 4.0, 0.5))
    assert abs(float(p[0, 0]) - 5.0) < 0.2
    y = sd.delayed_dense(x, sd.dcls_rounded_kernel(w, p, 8))
    np.testing.assert_allclose(y, target, atol=1e-6)


def test_sigma_schedule_and_bad_inputs():
    np.testing.assert_allclose(sd.dcls_sigma(0, 10, 4.0, 0.5), 4.0, rtol=1e-6)
    np.testing.assert_allclose(sd.dcls_sigma(10, 10, 4.0, 0.5), 0.5, rtol=1e-6)
    np.testing.assert_allclose(sd.dcls_sigma(50, 10, 4.0, 0.5), 0.5, rtol=1e-6)
    assert sd.dcls_sigma(3, 10, 4.0, 0.5) < sd.dcls_sigma(2, 10, 4.0, 0.5)
    with pytest.raises(ValueError, match="inputs"):
        sd.delayed_dense(jnp.ones((2, 5, 3)), jnp.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="positions"):
        sd.dcls_kernel(jnp.ones((2, 2)), jnp.ones((3, 2)), 4, 1.0)
    with pytest.raises(ValueError, match="rank"):
        sd.delay_shift(jnp.ones((5, 3)), jnp.array([1, 2, 3]))
