"""The Pallas selective-scan kernels (interpret mode on the CPU) against a lax.scan reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.selective_scan import selective_scan_pallas


def reference(u, delta, A, B, C, D, z, delta_bias, h0):
    """Mamba's recurrence written plainly: h_t = exp(delta A) h + delta B u, y = C h + D u."""
    dt = delta if delta_bias is None else jax.nn.softplus(delta + delta_bias)

    def step(h, xs):
        u_t, dt_t, b_t, c_t = xs
        h = jnp.exp(dt_t[:, :, None] * A) * h + (dt_t * u_t)[:, :, None] * b_t[:, None, :]
        return h, jnp.einsum("bdn,bn->bd", h, c_t)

    xs = tuple(jnp.moveaxis(x, 1, 0) for x in (u, dt, B, C))
    h_last, y = jax.lax.scan(step, h0, xs)
    y = jnp.moveaxis(y, 0, 1) + u * D
    return (y if z is None else y * jax.nn.silu(z)), h_last


def make(key, b, length, d, n):
    ks = jax.random.split(key, 8)
    u = jax.random.normal(ks[0], (b, length, d))
    delta = jax.random.normal(ks[1], (b, length, d)) * 0.5
    A = -jnp.exp(jax.random.normal(ks[2], (d, n)) * 0.5)
    B = jax.random.normal(ks[3], (b, length, n))
    C = jax.random.normal(ks[4], (b, length, n))
    D = jax.random.normal(ks[5], (d,))
    z = jax.random.normal(ks[6], (b, length, d))
    bias = jax.random.normal(ks[7], (d,)) * 0.1
    h0 = jax.random.normal(ks[7], (b, d, n)) * 0.5
    return u, delta, A, B, C, D, z, bias, h0


@pytest.mark.parametrize("length,chunk", [(1, 4), (37, 8)])
def test_values_and_gradients_match_reference(length, chunk):
    args = make(jax.random.PRNGKey(length), 2, length, 8, 4)
    wy = jax.random.normal(jax.random.PRNGKey(1), (2, length, 8))
    wh = jax.random.normal(jax.random.PRNGKey(2), (2, 8, 4))

    def kern(u, delta, A, B, C, D, z, bias, h0):
        return selective_scan_pallas(
            u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True,
            initial_state=h0, return_final_state=True, chunk=chunk, block_d=4,
        )  # fmt: skip

    def loss(fn):
        def f(*a):
            y, h = fn(*a)
            return jnp.sum(wy * y) + jnp.sum(wh * h)

        return f

    y_k, h_k = kern(*args)
    y_r, h_r = reference(*args)
    np.testing.assert_allclose(y_k, y_r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h_k, h_r, rtol=1e-4, atol=1e-4)
    g_k = jax.grad(loss(kern), tuple(range(9)))(*args)
    g_r = jax.grad(loss(reference), tuple(range(9)))(*args)
    names = "u delta A B C D z delta_bias h0".split()
    for name, gk, gr in zip(names, g_k, g_r):
        np.testing.assert_allclose(gk, gr, rtol=2e-4, atol=2e-4, err_msg=name)


def test_defaults_and_bfloat16():
    u, delta, A, B, C, *_ = make(jax.random.PRNGKey(5), 1, 33, 4, 2)
    y = selective_scan_pallas(u.astype(jnp.bfloat16), jax.nn.softplus(delta), A, B, C)
    h0 = jnp.zeros((1, 4, 2))
    y_r, _ = reference(u, jax.nn.softplus(delta), A, B, C, 0.0, None, None, h0)
    assert y.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y, np.float32), y_r, rtol=3e-2, atol=3e-2)


def test_kernel_equals_the_ops_reference():
    """The kernel against lib.ops' own `selective_scan(method="scan")`."""
    from lib.ops.ssm.selective import selective_scan

    u, delta, A, B, C, D, z, bias, h0 = make(jax.random.PRNGKey(11), 2, 19, 8, 4)
    kw = dict(z=z, delta_bias=bias, delta_softplus=True, initial_state=h0, return_final_state=True)
    y_k, h_k = selective_scan_pallas(u, delta, A, B, C, D, chunk=8, block_d=4, **kw)
    y_r, h_r = selective_scan(u, delta, A, B, C, D, method="scan", **kw)
    np.testing.assert_allclose(y_k, y_r, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h_k, h_r, rtol=1e-4, atol=1e-4)
