"""The Pallas linear-recurrence kernel (interpret mode on the CPU) against a lax.scan reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.kernels.linear_recurrence import linear_recurrence_pallas


def scan_reference(a, b, h0, reverse):
    """h_t = a_t h_{t-1} + b_t by lax.scan over time, in float32."""
    a32, b32 = a.astype(jnp.float32), b.astype(jnp.float32)
    h0 = jnp.zeros(b.shape[:1] + b.shape[2:], jnp.float32) if h0 is None else h0.astype(jnp.float32)

    def step(h, ab):
        h = ab[0] * h + ab[1]
        return h, h

    _, hs = jax.lax.scan(
        step, h0, (jnp.moveaxis(a32, 1, 0), jnp.moveaxis(b32, 1, 0)), reverse=reverse
    )
    return jnp.moveaxis(hs, 0, 1).astype(b.dtype)


def make_inputs(key, shape, dtype):
    ka, kb, kh = jax.random.split(key, 3)
    a = jax.nn.sigmoid(jax.random.normal(ka, shape) + 2.0).astype(dtype)
    b = jax.random.normal(kb, shape).astype(dtype)
    h0 = jax.random.normal(kh, (shape[0],) + shape[2:]).astype(dtype)
    return a, b, h0


@pytest.mark.parametrize("length", [1, 37, 300])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
def test_values_and_gradients_match_scan(length, reverse, with_h0):
    a, b, h0 = make_inputs(jax.random.PRNGKey(length), (2, length, 3, 8), jnp.float32)
    h0 = h0 if with_h0 else None
    w = jax.random.normal(jax.random.PRNGKey(7), b.shape)

    def loss(fn):
        def f(a, b, h0):
            h = fn(a, b, h0)
            return jnp.sum(w * h) + jnp.sum(h[:, -1] ** 2)  # final state gets its own gradient

        return f

    kern = lambda a, b, h0: linear_recurrence_pallas(a, b, h0, reverse=reverse, block_d=8)
    ref = lambda a, b, h0: scan_reference(a, b, h0, reverse)
    np.testing.assert_allclose(kern(a, b, h0), ref(a, b, h0), rtol=1e-5, atol=1e-5)
    argnums = (0, 1, 2) if with_h0 else (0, 1)
    g_k = jax.grad(loss(kern), argnums)(a, b, h0)
    g_r = jax.grad(loss(ref), argnums)(a, b, h0)
    for gk, gr in zip(g_k, g_r):
        np.testing.assert_allclose(gk, gr, rtol=1e-4, atol=1e-4)


def test_bfloat16_inputs_keep_float32_state():
    a, b, h0 = make_inputs(jax.random.PRNGKey(1), (2, 64, 16), jnp.bfloat16)
    out = linear_recurrence_pallas(a, b, h0)
    assert out.dtype == jnp.bfloat16
    ref = scan_reference(a, b, h0, False)
    np.testing.assert_allclose(
        out.astype(jnp.float32), ref.astype(jnp.float32), rtol=2e-2, atol=2e-2
    )


def test_long_sequence_is_finite():
    a, b, h0 = make_inputs(jax.random.PRNGKey(2), (1, 4096, 4), jnp.float32)
    out = jax.jit(linear_recurrence_pallas)(a, b, h0)
    ref = scan_reference(a, b, h0, False)
    assert np.isfinite(np.asarray(out)).all()
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)


def test_rejects_complex_and_bad_block():
    a, b, _ = make_inputs(jax.random.PRNGKey(3), (1, 5, 6), jnp.float32)
    with pytest.raises(ValueError, match="real inputs"):
        linear_recurrence_pallas(a.astype(jnp.complex64), b)
    with pytest.raises(ValueError, match="block_d"):
        linear_recurrence_pallas(a, b, block_d=4)
