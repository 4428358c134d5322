"""LowRankDense: SVD init from a Dense, ordered dropout, Maestro reorder, TRP tree helpers."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.lowrank.layers import (
    LowRankDense,
    lowrank_params_from_dense,
    maestro_reorder,
    maestro_truncate,
    nuclear_norm_grads,
    trp_project_params,
)
from lib.ops.lowrank.factor import effective_rank


def test_lowrank_dense_from_dense_and_ordered_dropout():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 10))
    dense = nn.Dense(6)
    dp = dense.init(jax.random.PRNGKey(1), x)["params"]
    layer = LowRankDense(6, rank=6, ordered_dropout=True)
    p = {"params": lowrank_params_from_dense(dp, 6)}
    np.testing.assert_allclose(layer.apply(p, x), dense.apply({"params": dp}, x), atol=1e-5)
    y2 = layer.apply(p, x, rank=2)
    u, v = p["params"]["u"], p["params"]["v"]
    np.testing.assert_allclose(y2, x @ u[:, :2] @ v[:2] + dp["bias"], rtol=1e-5, atol=1e-6)
    # training mode samples a rank from the dropout rng: outputs vary between rngs
    outs = {
        round(float(jnp.sum(layer.apply(p, x, deterministic=False, rngs={"dropout": k}))), 4)
        for k in jax.random.split(jax.random.PRNGKey(2), 12)
    }
    assert len(outs) > 1
    init = LowRankDense(6, rank=3).init(jax.random.PRNGKey(3), x)["params"]
    assert init["u"].shape == (10, 3) and init["v"].shape == (3, 6)


def test_maestro_reorder_and_truncate():
    u = jax.random.normal(jax.random.PRNGKey(4), (8, 4)) * jnp.array([0.1, 3.0, 1.0, 0.5])
    v = jax.random.normal(jax.random.PRNGKey(5), (4, 5))
    p = maestro_reorder({"u": u, "v": v})
    np.testing.assert_allclose(p["u"] @ p["v"], u @ v, rtol=1e-5, atol=1e-6)
    norms = jnp.linalg.norm(p["u"], axis=0) * jnp.linalg.norm(p["v"], axis=1)
    assert bool(jnp.all(jnp.diff(norms) <= 0))
    assert maestro_truncate(p, 2)["u"].shape == (8, 2)


def test_trp_tree_helpers():
    k = jax.random.normal(jax.random.PRNGKey(6), (12, 12))
    params = {"a": {"kernel": k, "bias": jnp.ones(12)}, "b": {"scale": jnp.ones((3, 3))}}
    proj = trp_project_params(params, energy=0.6)
    assert effective_rank(proj["a"]["kernel"], 0.999) < 12
    np.testing.assert_array_equal(proj["b"]["scale"], params["b"]["scale"])
    g = nuclear_norm_grads(params)
    np.testing.assert_allclose(jnp.linalg.svd(g["a"]["kernel"], compute_uv=False), 1, rtol=1e-4)
    np.testing.assert_array_equal(g["a"]["bias"], 0.0)
    np.testing.assert_array_equal(g["b"]["scale"], 0.0)
