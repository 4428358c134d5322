"""Low rank: SVD factorization, energy truncation, Maestro recovers the SVD, TRP lowers rank."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lib.ops.lowrank.factor import (
    effective_rank,
    importance_order,
    lowrank_apply,
    nuclear_norm,
    nuclear_norm_subgradient,
    principal_angles,
    rank_for_energy,
    reorder,
    sample_rank,
    svd_factorize,
    trp_project,
    truncate_by_energy,
)


def _matrix_with_spectrum(key, d_in, d_out, s):
    k1, k2 = jax.random.split(key)
    q1, _ = jnp.linalg.qr(jax.random.normal(k1, (d_in, d_in)))
    q2, _ = jnp.linalg.qr(jax.random.normal(k2, (d_out, d_out)))
    r = len(s)
    return (q1[:, :r] * jnp.asarray(s)) @ q2[:, :r].T, q1[:, :r], q2[:, :r]


def test_svd_factorize_eckart_young_and_energy():
    s = jnp.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.1])
    w, _, _ = _matrix_with_spectrum(jax.random.PRNGKey(0), 12, 8, s)
    u, v = svd_factorize(w, 6)
    np.testing.assert_allclose(u @ v, w, atol=1e-5)
    u3, v3 = svd_factorize(w, 3)
    assert u3.shape == (12, 3) and v3.shape == (3, 8)
    err = jnp.linalg.norm(w - u3 @ v3)
    np.testing.assert_allclose(err, jnp.sqrt(jnp.sum(s[3:] ** 2)), rtol=1e-4)
    energy = jnp.cumsum(s**2) / jnp.sum(s**2)  # [.66, .90, .97, .99, .998, 1]
    assert rank_for_energy(s, 0.9) == 3 and rank_for_energy(s, 0.5) == 1
    assert rank_for_energy(s, float(energy[3])) == 4
    assert effective_rank(w, 0.95) == 3
    assert truncate_by_energy(w, 0.95)[0].shape == (12, 3)
    np.testing.assert_allclose(trp_project(w, 0.95), u3 @ v3, atol=1e-5)
    np.testing.assert_allclose(nuclear_norm(w), s.sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="rank must be"):
        svd_factorize(w, 9)
    with pytest.raises(ValueError, match="2-D kernel"):
        svd_factorize(w[None], 2)


def test_ordered_dropout_prefix_and_importance_order():
    key = jax.random.PRNGKey(1)
    x = jax.random.normal(key, (4, 6))
    u = jax.random.normal(jax.random.PRNGKey(2), (6, 5))
    v = jax.random.normal(jax.random.PRNGKey(3), (5, 3))
    np.testing.assert_allclose(lowrank_apply(x, u, v, 2), x @ u[:, :2] @ v[:2], rtol=1e-5)
    np.testing.assert_allclose(lowrank_apply(x, u, v), x @ u @ v, rtol=1e-5)
    ranks = sample_rank(key, 5, shape=(1000,))
    assert int(ranks.min()) == 1 and int(ranks.max()) == 5
    order = importance_order(u * jnp.array([1, 5, 2, 4, 3.0]) * 10, v)
    uo, vo = reorder(u, v, order)
    np.testing.assert_allclose(x @ uo @ vo, x @ u @ v, rtol=1e-4, atol=1e-5)
    # the permutation from the nuclear-norm subgradient: U V^T has unit singular values
    np.testing.assert_allclose(
        jnp.linalg.svd(nuclear_norm_subgradient(u), compute_uv=False), 1.0, rtol=1e-5
    )


def test_maestro_ordered_dropout_recovers_svd():
    """Linear map, uniform inputs: ordered dropout makes the first k learned components span
    the top-k singular subspaces (principal angles < 5 degrees), as Maestro's theory says."""
    d_in, d_out, max_rank, k = 16, 12, 6, 3
    s = jnp.array([4.0, 3.0, 2.2, 1.5, 1.0, 0.6])
    w, left, right = _matrix_with_spectrum(jax.random.PRNGKey(4), d_in, d_out, s)
    init = jax.random.normal(jax.random.PRNGKey(5), (d_in + d_out, max_rank)) * 0.1
    params = {"u": init[:d_in], "v": init[d_in:].T}
    opt = optax.adam(1e-2)

    def loss(p, x, r):
        return jnp.mean(jnp.sum((lowrank_apply(x, p["u"], p["v"], r) - x @ w) ** 2, -1))

    def step(carry, key):
        p, st = carry
        kx, kr = jax.random.split(key)
        x = jax.random.uniform(kx, (128, d_in), minval=-1.0, maxval=1.0)
        g = jax.grad(loss)(p, x, sample_rank(kr, max_rank))
        upd, st = opt.update(g, st, p)
        return (optax.apply_updates(p, upd), st), None

    keys = jax.random.split(jax.random.PRNGKey(6), 1500)
    (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, keys))((params, opt.init(params)))
    ang_in = principal_angles(params["u"][:, :k], left[:, :k])
    ang_out = principal_angles(params["v"][:k].T, right[:, :k])
    assert float(ang_in.max()) < 5.0 and float(ang_out.max()) < 5.0
    # and each single component is a singular direction (ordered, not just the subspace)
    for i in range(k):
        assert float(principal_angles(params["v"][i : i + 1].T, right[:, i : i + 1])[0]) < 5.0


def test_trp_reduces_effective_rank():
    """Regression onto a rank-3 map plus noise: TRP (nuclear-norm subgradient + periodic
    projection) ends with a lower effective rank than plain training, at similar fit."""
    d = 16
    w_true, _, _ = _matrix_with_spectrum(jax.random.PRNGKey(7), d, d, [3.0, 2.0, 1.0])
    x = jax.random.normal(jax.random.PRNGKey(8), (256, d))
    y = x @ w_true + 0.3 * jax.random.normal(jax.random.PRNGKey(9), (256, d))
    w0 = jax.random.normal(jax.random.PRNGKey(10), (d, d)) * 0.3

    def train(lam, period):
        def body(i, w):
            g = jax.grad(lambda t: jnp.mean((x @ t - y) ** 2))(w)
            w = w - 0.05 * (g + lam * nuclear_norm_subgradient(w))
            if period:
                w = jax.lax.cond(i % period == period - 1, trp_project, lambda t: t, w)
            return w

        return jax.jit(lambda w: jax.lax.fori_loop(0, 400, body, w))(w0)

    w_plain = train(0.0, 0)
    w_trp = train(0.01, 20)
    assert effective_rank(w_trp, 0.99) <= 4 < effective_rank(w_plain, 0.99)
    fit = lambda w: float(jnp.mean((x @ w - x @ w_true) ** 2))
    assert fit(w_trp) < 0.05
