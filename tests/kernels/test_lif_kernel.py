"""The Pallas LIF kernel (interpret mode on the CPU) against a lax.scan LIF with the same surrogate."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.lif import lif_pallas

SLOPE = 5.0


def fast_sigmoid_grad(x):
    return 1.0 / (1.0 + SLOPE * jnp.abs(x)) ** 2


@jax.custom_vjp
def heaviside(x):
    return (x >= 0).astype(x.dtype)


heaviside.defvjp(lambda x: (heaviside(x), x), lambda x, g: (g * fast_sigmoid_grad(x),))


def lif_reference(current, beta, v0, threshold, reset, detach):
    """LIF by lax.scan over time with autodiff through a surrogate Heaviside."""

    def step(v, i_t):
        u = beta * v + i_t
        s = heaviside(u - threshold)
        s_r = jax.lax.stop_gradient(s) if detach else s
        v = u - threshold * s_r if reset == "subtract" else u * (1.0 - s_r)
        return v, s

    _, s = jax.lax.scan(step, v0, jnp.moveaxis(current, 1, 0))
    return jnp.moveaxis(s, 0, 1)


@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("detach", [False, True])
@pytest.mark.parametrize("length", [1, 37])
def test_spikes_and_gradients_match_reference(reset, detach, length):
    key = jax.random.PRNGKey(length)
    k1, k2, k3, k4 = jax.random.split(key, 4)
    current = jax.random.normal(k1, (3, length, 16)) * 0.8 + 0.3
    beta = jax.nn.sigmoid(jax.random.normal(k2, (16,)) + 1.0)
    v0 = jax.random.uniform(k3, (3, 16))
    w = jax.random.normal(k4, current.shape)

    def loss(fn):
        return lambda c, b, v: jnp.sum(w * fn(c, b, v))

    kern = lambda c, b, v: lif_pallas(
        c,
        beta=b,
        v0=v,
        surrogate_grad=fast_sigmoid_grad,
        reset=reset,
        detach_reset=detach,
        block_d=8,
    )
    ref = lambda c, b, v: lif_reference(c, b, v, 1.0, reset, detach)
    s_k, s_r = kern(current, beta, v0), ref(current, beta, v0)
    np.testing.assert_array_equal(s_k, s_r)
    assert set(np.unique(np.asarray(s_k))) <= {0.0, 1.0}
    g_k = jax.grad(loss(kern), (0, 1, 2))(current, beta, v0)
    g_r = jax.grad(loss(ref), (0, 1, 2))(current, beta, v0)
    for gk, gr in zip(g_k, g_r):
        np.testing.assert_allclose(gk, gr, rtol=1e-4, atol=1e-5)


def test_long_sequence_finite_and_bfloat16():
    current = jax.random.normal(jax.random.PRNGKey(0), (1, 2048, 8)).astype(jnp.bfloat16)
    f = jax.jit(lambda c: jnp.sum(lif_pallas(c, beta=0.9, surrogate_grad=fast_sigmoid_grad)))
    g = jax.grad(f)(current)
    assert g.dtype == jnp.bfloat16 and np.isfinite(np.asarray(g, np.float32)).all()


def test_bad_reset_is_rejected():
    with pytest.raises(ValueError, match="reset"):
        lif_pallas(jnp.zeros((1, 2, 3)), beta=0.9, surrogate_grad=fast_sigmoid_grad, reset="hard")
