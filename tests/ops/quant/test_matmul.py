"""int8 x int8 -> int32 dot_general and FP8 matmuls vs their fake-quant twins."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.quant.matmul import (
    fp8_matmul,
    fp8_matmul_fake,
    int8_dot,
    int8_matmul,
    int8_matmul_fake,
)


def test_int8_dot_exact_int32():
    a = jax.random.randint(jax.random.PRNGKey(0), (3, 5, 64), -128, 128).astype(jnp.int8)
    b = jax.random.randint(jax.random.PRNGKey(1), (64, 7), -128, 128).astype(jnp.int8)
    out = int8_dot(a, b)
    assert out.dtype == jnp.int32
    ref = np.asarray(a, np.int64) @ np.asarray(b, np.int64)
    np.testing.assert_array_equal(np.asarray(out, np.int64), ref)
    with pytest.raises(TypeError, match="int8"):
        int8_dot(a.astype(jnp.int32), b)


def test_int8_matmul_matches_fake_twin_and_float():
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 9, 48))
    w = jax.random.normal(jax.random.PRNGKey(3), (48, 16)) * 0.1
    out = jax.jit(int8_matmul)(x, w)
    np.testing.assert_allclose(out, int8_matmul_fake(x, w), rtol=1e-5, atol=1e-6)
    rel = jnp.linalg.norm(out - x @ w) / jnp.linalg.norm(x @ w)
    assert float(rel) < 0.02
    with pytest.raises(ValueError, match="expected a"):
        int8_matmul(x, w.T)


@pytest.mark.parametrize("fmt,tol", [("e4m3", 0.06), ("e5m2", 0.12)])
def test_fp8_matmul_matches_fake_twin(fmt, tol):
    x = jax.random.normal(jax.random.PRNGKey(4), (7, 32)) * 3
    w = jax.random.normal(jax.random.PRNGKey(5), (32, 12))
    out = jax.jit(lambda a, b: fp8_matmul(a, b, fmt))(x, w)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, fp8_matmul_fake(x, w, fmt), rtol=1e-5, atol=1e-5)
    rel = jnp.linalg.norm(out - x @ w) / jnp.linalg.norm(x @ w)
    assert float(rel) < tol
    with pytest.raises(ValueError, match="unknown fmt"):
        fp8_matmul(x, w, "e3m4")
