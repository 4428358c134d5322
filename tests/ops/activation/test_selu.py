"""Tests for lib.ops.activation.selu: SELU fixed point, alpha-dropout moments, LeCun-normal init."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.activation import selu as S


def test_selu_matches_jax_nn_and_definition():
    x = jnp.linspace(-6.0, 6.0, 101)
    np.testing.assert_allclose(S.selu(x), jax.nn.selu(x), rtol=1e-6, atol=1e-6)
    want = np.where(np.asarray(x) > 0, S.LAMBDA * x, S.LAMBDA * S.ALPHA * (np.exp(x) - 1))
    np.testing.assert_allclose(S.selu(x), want, rtol=1e-6, atol=1e-6)


def test_selu_gradient_finite_far_negative_and_matches_fd():
    g = jax.grad(lambda x: S.selu(x).sum())(jnp.array([-200.0, -1.0, 0.5]))
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g[1], S.LAMBDA * S.ALPHA * np.exp(-1.0), rtol=1e-5)
    np.testing.assert_allclose(g[2], S.LAMBDA, rtol=1e-6)


def test_selu_bfloat16_close_to_float32():
    x = jnp.linspace(-4.0, 4.0, 33)
    y16 = S.selu(x.astype(jnp.bfloat16))
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(y16.astype(jnp.float32), S.selu(x), rtol=2e-2, atol=2e-2)


def test_constants_give_the_zero_one_fixed_point():
    mean, var = S.selu_moments(0.0, 1.0)
    np.testing.assert_allclose([mean, var], [0.0, 1.0], atol=1e-5)


def test_moments_match_monte_carlo_and_contract_towards_fixed_point():
    z = jax.random.normal(jax.random.key(0), (400_000,))
    for mu, nu in [(0.3, 1.5), (-0.2, 0.6)]:
        mean, var = S.selu_moments(mu, nu)
        y = S.selu(mu + np.sqrt(nu) * z)
        np.testing.assert_allclose(mean, y.mean(), atol=6e-3)
        np.testing.assert_allclose(var, y.var(), rtol=1e-2)
    # A layer with weight sum omega and squared-weight sum tau maps (mu, nu) to
    # g(mu * omega, nu * tau); with omega = 0, tau = 1 (LeCun init, in expectation), iterating
    # from off-fixed-point moments goes to (0, 1): the paper's attracting fixed point.
    mu, nu, omega, tau = 0.5, 2.0, 0.0, 1.0
    for _ in range(30):
        mu, nu = S.selu_moments(mu * omega, nu * tau)
    np.testing.assert_allclose([mu, nu], [0.0, 1.0], atol=1e-3)


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_alpha_dropout_keeps_zero_mean_unit_variance(rate):
    x = jax.random.normal(jax.random.key(1), (500_000,))
    y = S.alpha_dropout(x, rate, jax.random.key(2))
    np.testing.assert_allclose(y.mean(), 0.0, atol=6e-3)
    np.testing.assert_allclose(y.var(), 1.0, rtol=1e-2)
    # The fraction of dropped units (mapped to a * alpha' + b) is the rate.
    a, b = S.alpha_dropout_affine(rate)
    dropped = np.isclose(np.asarray(y), a * S.ALPHA_PRIME + b, atol=1e-6)
    np.testing.assert_allclose(dropped.mean(), rate, atol=5e-3)


def test_alpha_dropout_deterministic_and_bad_input():
    x = jnp.arange(6.0)
    np.testing.assert_array_equal(S.alpha_dropout(x, 0.3, deterministic=True), x)
    np.testing.assert_array_equal(S.alpha_dropout(x, 0.0, jax.random.key(0)), x)
    with pytest.raises(ValueError, match="rate"):
        S.alpha_dropout(x, 1.0, jax.random.key(0))
    with pytest.raises(ValueError, match="rng"):
        S.alpha_dropout(x, 0.1)


def test_lecun_normal_variance_and_errors():
    w = S.lecun_normal(jax.random.key(3), (256, 512))
    np.testing.assert_allclose(w.mean(), 0.0, atol=3e-3)
    np.testing.assert_allclose(w.var() * 256, 1.0, rtol=2e-2)
    w4 = S.lecun_normal(jax.random.key(4), (3, 3, 16, 8))
    np.testing.assert_allclose(w4.var() * 144, 1.0, rtol=0.1)
    with pytest.raises(ValueError, match="rank"):
        S.lecun_normal(jax.random.key(0), (5,))
