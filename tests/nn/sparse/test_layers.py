"""Sparse Linen layers: N:M dense, DSFormer dense, Delta activation, magnitude pruning."""

import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.sparse.layers import DeltaActivation, DSFormerDense, NMSparseDense, magnitude_prune
from lib.ops.sparse.pruning import delta_layer, is_valid_nm, nm_mask


def test_nm_and_dsformer_dense():
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
    layer = NMSparseDense(8)
    p = layer.init(jax.random.PRNGKey(1), x)
    k = p["params"]["kernel"]
    ref = x @ (k * nm_mask(k, 2, 4)) + p["params"]["bias"]
    np.testing.assert_allclose(layer.apply(p, x), ref, rtol=1e-5, atol=1e-6)
    g = jax.jit(jax.grad(lambda t: jnp.sum(layer.apply(t, x) ** 2)))(p)
    assert float(jnp.mean(g["params"]["kernel"] != 0)) > 0.9  # straight-through: dense grads
    ds = DSFormerDense(8, inner=12)
    pd = ds.init(jax.random.PRNGKey(2), x)
    assert pd["params"]["dense"].shape == (16, 12) and pd["params"]["sparse"].shape == (12, 8)
    assert ds.apply(pd, x).shape == (3, 8)
    assert is_valid_nm(nm_mask(pd["params"]["sparse"]), 2, 4)


def test_delta_activation_module():
    x = jnp.cumsum(0.05 * jax.random.normal(jax.random.PRNGKey(3), (2, 30, 4)), axis=1)
    mod = DeltaActivation(threshold=0.1)
    y, st = mod.apply({}, x, mutable=["intermediates"])
    np.testing.assert_allclose(y, delta_layer(x, 0.1)[0], atol=1e-6)
    inter = st["intermediates"]
    assert 0 < float(inter["delta_nonzero_fraction"][0]) < 0.6
    assert float(inter["delta_sparsity_loss"][0]) > 0
    state = jnp.zeros((2, 4))
    for t in range(3):
        state, yt = mod.apply({}, state, x[:, t], method="step")
        np.testing.assert_allclose(yt, y[:, t], atol=1e-6)
    (y1, s1), _ = mod.apply({}, x[:, :10], return_state=True, mutable=["intermediates"])
    y2, _ = mod.apply({}, x[:, 10:], state=s1, mutable=["intermediates"])
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y, atol=1e-6)


def test_magnitude_prune_tree():
    params = {
        "d": {"kernel": jax.random.normal(jax.random.PRNGKey(4), (8, 8)), "bias": jnp.ones(8)}
    }
    pruned, masks = magnitude_prune(params, 0.75)
    assert list(masks) == ["d/kernel"]
    assert int(jnp.sum(pruned["d"]["kernel"] != 0)) == 16
    np.testing.assert_array_equal(pruned["d"]["bias"], 1.0)
