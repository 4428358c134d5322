"""The Pallas chunked-GLA kernels (interpret mode on the CPU) against the plain recurrence."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.gla import gla_pallas


def recurrent_reference(q, k, v, g, s0, scale):
    """S_t = diag(exp(g_t)) S_{t-1} + k_t^T v_t, o_t = scale q_t S_t, by lax.scan in float32."""
    if g.ndim == 3:
        g = jnp.broadcast_to(g[..., None], q.shape)

    def step(s, xs):
        q_t, k_t, v_t, g_t = xs
        s = jnp.exp(g_t)[..., None] * s + k_t[..., :, None] * v_t[..., None, :]
        return s, scale * jnp.einsum("bhk,bhkv->bhv", q_t, s)

    xs = tuple(jnp.moveaxis(x.astype(jnp.float32), 1, 0) for x in (q, k, v, g))
    s_last, o = jax.lax.scan(step, s0, xs)
    return jnp.moveaxis(o, 0, 1), s_last


def make(key, b, t, h, dk, dv, gate_scale=1.0, scalar_gate=False):
    ks = jax.random.split(key, 5)
    q = jax.random.normal(ks[0], (b, t, h, dk))
    k = jax.random.normal(ks[1], (b, t, h, dk))
    v = jax.random.normal(ks[2], (b, t, h, dv))
    gshape = (b, t, h) if scalar_gate else (b, t, h, dk)
    g = jax.nn.log_sigmoid(jax.random.normal(ks[3], gshape) + 2.0) * gate_scale
    s0 = jax.random.normal(ks[4], (b, h, dk, dv))
    return q, k, v, g, s0


@pytest.mark.parametrize("length,scalar_gate", [(1, False), (37, False), (37, True)])
def test_values_and_gradients_match_recurrence(length, scalar_gate):
    q, k, v, g, s0 = make(jax.random.PRNGKey(length), 1, length, 2, 8, 8, scalar_gate=scalar_gate)
    wo = jax.random.normal(jax.random.PRNGKey(3), v.shape)
    ws = jax.random.normal(jax.random.PRNGKey(4), s0.shape)

    def kern(q, k, v, g, s0):
        return gla_pallas(
            q, k, v, g, initial_state=s0, return_final_state=True, chunk_size=16, sub_chunk=8,
            block_v=4,
        )  # fmt: skip

    ref = lambda q, k, v, g, s0: recurrent_reference(q, k, v, g, s0, 8**-0.5)

    def loss(fn):
        def f(*a):
            o, s = fn(*a)
            return jnp.sum(wo * o) + jnp.sum(ws * s)

        return f

    (o_k, s_k), (o_r, s_r) = kern(q, k, v, g, s0), ref(q, k, v, g, s0)
    np.testing.assert_allclose(o_k, o_r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s_k, s_r, rtol=1e-4, atol=1e-4)
    g_k = jax.grad(loss(kern), tuple(range(5)))(q, k, v, g, s0)
    g_r = jax.grad(loss(ref), tuple(range(5)))(q, k, v, g, s0)
    for name, gk, gr in zip("q k v g s0".split(), g_k, g_r):
        np.testing.assert_allclose(gk, gr, rtol=2e-4, atol=2e-4, err_msg=name)


def test_strong_decay_stays_finite():
    """Log gates near -20 per step would overflow exp(-cumsum) in a naive chunked form."""
    q, k, v, g, s0 = make(jax.random.PRNGKey(0), 1, 64, 1, 4, 4, gate_scale=40.0)
    assert float(g.min()) < -10
    o = gla_pallas(q, k, v, g, chunk_size=32, sub_chunk=8)
    o_r, _ = recurrent_reference(q, k, v, g, jnp.zeros_like(s0), 4**-0.5)
    assert np.isfinite(np.asarray(o)).all()
    np.testing.assert_allclose(o, o_r, rtol=1e-4, atol=1e-4)
    grads = jax.grad(lambda g: jnp.sum(gla_pallas(q, k, v, g, chunk_size=32, sub_chunk=8)))(g)
    assert np.isfinite(np.asarray(grads)).all()


def test_chunk_size_does_not_change_result_and_bad_chunk_rejected():
    q, k, v, g, _ = make(jax.random.PRNGKey(1), 1, 40, 1, 4, 4)
    a = gla_pallas(q, k, v, g, chunk_size=16, sub_chunk=8)
    b = gla_pallas(q, k, v, g, chunk_size=32, sub_chunk=16)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="sub_chunk"):
        gla_pallas(q, k, v, g, chunk_size=24, sub_chunk=16)


def test_kernel_equals_the_ops_reference():
    """The kernel against lib.ops' own `gla(method="ref")`, the op it serves on accelerators."""
    from lib.ops.linear_attention.gated import gla

    q, k, v, g, s0 = make(jax.random.PRNGKey(9), 2, 21, 2, 8, 4)
    o_k, s_k = gla_pallas(
        q, k, v, g, initial_state=s0, return_final_state=True, chunk_size=16, sub_chunk=8
    )
    o_r, s_r = gla(q, k, v, g, initial_state=s0, return_final_state=True, method="ref")
    np.testing.assert_allclose(o_k, o_r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(s_k, s_r, rtol=1e-4, atol=1e-4)
