"""Tests for lib.train.noise: the annealed schedule eta / (1 + t)^gamma as an optax transform."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lib.train.noise import (
    annealed_gradient_noise,
    gradient_noise_std,
    reseed_noise,
    with_gradient_noise,
)


def test_std_formula():
    np.testing.assert_allclose(gradient_noise_std(0, 0.3), np.sqrt(0.3), rtol=1e-6)
    np.testing.assert_allclose(
        gradient_noise_std(jnp.array([9, 99]), 1.0, 0.55),
        np.sqrt(1.0 / np.array([10, 100]) ** 0.55),
    )


def test_empirical_noise_follows_schedule():
    """Zero gradients in: what comes out is the noise; its std per step matches sigma_t."""
    eta, gamma, n = 0.3, 0.55, 200_000
    tx = annealed_gradient_noise(eta, gamma, key=jax.random.key(0))
    params = {"w": jnp.zeros((n // 2,)), "b": jnp.zeros((n // 2,))}
    state = tx.init(params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    update = jax.jit(tx.update)
    stds = {}
    for t in range(40):
        noise, state = update(zeros, state)
        if t in (0, 9, 39):
            flat = jnp.concatenate([noise["w"], noise["b"]])
            stds[t] = float(flat.std())
            assert abs(float(flat.mean())) < 5 * stds[t] / np.sqrt(n)
    for t, s in stds.items():
        np.testing.assert_allclose(s, gradient_noise_std(t, eta, gamma), rtol=1e-2)


def test_noise_is_added_to_gradient_before_sgd():
    params = jnp.zeros((50_000,))
    grads = jnp.full_like(params, 2.0)
    lr = 0.1
    tx = with_gradient_noise(optax.sgd(lr), eta=0.01, key=1)
    upd, _ = tx.update(grads, tx.init(params), params)
    # update = -lr * (g + noise): mean -lr*g, std lr*sqrt(eta).
    np.testing.assert_allclose(upd.mean(), -lr * 2.0, rtol=1e-3)
    np.testing.assert_allclose(upd.std(), lr * 0.1, rtol=2e-2)


def test_zero_eta_is_plain_optimizer_and_clip_comes_first():
    params = jnp.ones((4,))
    g = jnp.array([3.0, 4.0, 0.0, 0.0])
    plain = with_gradient_noise(optax.sgd(1.0), eta=0.0)
    upd, _ = plain.update(g, plain.init(params), params)
    np.testing.assert_allclose(upd, -g)
    clipped = with_gradient_noise(optax.sgd(1.0), eta=0.0, clip_norm=1.0)
    upd, _ = clipped.update(g, clipped.init(params), params)
    np.testing.assert_allclose(upd, -g / 5.0, rtol=1e-6)
    with pytest.raises(ValueError, match="eta"):
        annealed_gradient_noise(-1.0)


def test_reseed_noise_changes_the_stream_only():
    tx = with_gradient_noise(optax.sgd(1.0), eta=1.0, key=0)
    params = jnp.zeros((8,))
    s0 = tx.init(params)
    s1 = reseed_noise(s0, jax.random.key(5))
    s2 = reseed_noise(s0, jax.random.key(6))
    u0, _ = tx.update(params, s0)
    u1, _ = tx.update(params, s1)
    u1b, _ = tx.update(params, reseed_noise(s0, jax.random.key(5)))
    u2, _ = tx.update(params, s2)
    assert not np.allclose(u0, u1) and not np.allclose(u1, u2)
    np.testing.assert_array_equal(u1, u1b)
    assert jax.tree.structure(s0) == jax.tree.structure(s1)
    plain = optax.sgd(1.0).init(params)
    assert jax.tree.structure(reseed_noise(plain, jax.random.key(0))) == jax.tree.structure(plain)
