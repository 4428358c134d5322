"""L-Mul: bit-level emulation vs the paper's formula, and its precision claims (row 22)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.quant.lmul import (
    fp8_mul,
    lmul,
    lmul_matmul,
    lmul_offset_exponent,
    mean_relative_error,
    round_mantissa,
)


def _formula(x, y, k):
    """The paper's L-Mul in float64 from (sign, exponent, mantissa), with the adder's carry."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    fx, ex = np.frexp(np.abs(x))  # |x| = fx 2**ex, fx in [0.5, 1): x_m = 2 fx - 1
    fy, ey = np.frexp(np.abs(y))
    s = (2 * fx - 1) + (2 * fy - 1) + 2.0 ** -lmul_offset_exponent(k)
    e = (ex - 1) + (ey - 1)
    carry = np.floor(s)  # the adder's mantissa carry (0, 1, or 2 when s >= 2) moves up
    mag = (1 + s - carry) * 2.0 ** (e + carry)
    return np.sign(x) * np.sign(y) * mag


@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_lmul_bits_equal_formula(k):
    kx, ky = jax.random.split(jax.random.PRNGKey(k))
    x = round_mantissa(jax.random.normal(kx, (5000,)) * 10, k)
    y = round_mantissa(jax.random.normal(ky, (5000,)), k)
    x = x.at[:3].set(jnp.array([0.0, -0.0, 1.5]))
    y = y.at[:3].set(jnp.array([2.0, 3.0, 1.5]))
    got = np.asarray(jax.jit(lambda a, b: lmul(a, b, k))(x, y), np.float64)
    np.testing.assert_array_equal(got, _formula(x, y, k))
    assert got[2] == 2 * (1 + 2.0 ** -lmul_offset_exponent(k))  # 1.5 * 1.5: the sum carries
    # results stay on the k-bit mantissa grid
    np.testing.assert_array_equal(round_mantissa(got.astype(np.float32), k), got)


def test_lmul_edge_cases_and_errors():
    tiny, huge = jnp.float32(1e-30), jnp.float32(1e30)
    assert float(lmul(tiny, tiny, 3)) == 0.0  # underflow flushes to zero
    assert float(lmul(huge, -huge, 3)) == -np.inf
    assert lmul_offset_exponent(3) == 3 and lmul_offset_exponent(4) == 3
    assert lmul_offset_exponent(5) == 4
    with pytest.raises(ValueError, match="mantissa_bits"):
        lmul(jnp.ones(2), jnp.ones(2), 0)
    a = jax.random.normal(jax.random.PRNGKey(0), (3, 5, 8))
    b = jax.random.normal(jax.random.PRNGKey(1), (8, 4))
    np.testing.assert_allclose(
        lmul_matmul(a, b, 7), jnp.sum(lmul(a[..., None], b, 7), axis=-2), rtol=1e-6
    )
    np.testing.assert_allclose(lmul_matmul(a, b, 7), a @ b, atol=0.5)  # ~3% per product
    with pytest.raises(ValueError, match="lmul_matmul"):
        lmul_matmul(a, b.T)


def test_lmul_precision_claims_on_random_normal_operands():
    """Metric pinned: mean relative error |p - xy| / |xy| over 200k products of N(0, 1) float32
    operands, exact xy in float64. fp8 reference: operands rounded to the format (saturating)
    and multiplied exactly, reported without and with rounding the product to the same format.
    L-Mul: operands rounded to k mantissa bits (8-bit exponent); its output has k mantissa
    bits already. Measured (seed 0): L-Mul k=3 5.7%, k=4 5.3%; e5m2 6.1% / 7.2% (product
    unrounded / rounded), e4m3 3.4% / 4.5%.
    - "3-bit L-Mul beats float8_e5m2" holds under both variants.
    - "4-bit L-Mul is as precise as float8_e4m3" does NOT hold under this metric: it is
      comparable (within 1.25x) only against the e4m3 product rounded to e4m3, and worse than
      the unrounded e4m3 product. The paper's abstract says "comparable precision".
    """
    kx, ky = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (200_000,))
    y = jax.random.normal(ky, (200_000,))
    lm3 = mean_relative_error(lmul(x, y, 3), x, y)
    lm4 = mean_relative_error(lmul(x, y, 4), x, y)
    e5 = [mean_relative_error(fp8_mul(x, y, 5, 2, round_output=r), x, y) for r in (False, True)]
    e4 = [mean_relative_error(fp8_mul(x, y, 4, 3, round_output=r), x, y) for r in (False, True)]
    assert lm3 < e5[0] < e5[1]  # claim holds, with and without rounding the product
    assert lm4 < 1.25 * e4[1]  # "comparable" to e4m3 with a rounded product
    assert lm4 > e4[0]  # but not at least as precise as the exact e4m3 product
    assert lm4 < lm3  # more mantissa bits, less error


def test_lmul_attention_error_characterised():
    """Row 22's "L-Mul attention is almost lossless", mechanism level only (downstream accuracy
    is not tested here). Relative error of the causal attention output on N(0, 1) q, k, v
    ([2, 16, 2, 16], seed 3), L-Mul in both matmuls vs float32, beside plain rounding of the
    operands (q, k, probabilities, v) to the same mantissa width. Measured:
    k=2: L-Mul 25% / rounding 9%; k=3: 10% / 5%; k=4: 9.8% / 2.6%; k=7: 4.0% / 0.3%.
    So L-Mul attention costs more error than rounding to the same width, and the 3-bit L-Mul
    is slightly worse than e5m2-width (2-bit) rounding (9.1%) on this toy."""
    from lib.ops.quant.lmul import lmul_attention

    kq, kk, kv = jax.random.split(jax.random.PRNGKey(3), 3)
    q, k, v = (jax.random.normal(key, (2, 16, 2, 16)) for key in (kq, kk, kv))

    def attn(q, k, v, r=lambda t: t):
        logits = jnp.einsum("blhd,bmhd->bhlm", r(q), r(k)) / 4.0
        mask = jnp.tril(jnp.ones((16, 16), bool))
        p = jax.nn.softmax(jnp.where(mask, logits, -jnp.inf), -1)
        return jnp.einsum("bhlm,bmhd->blhd", r(p), r(v))

    exact = attn(q, k, v)
    rel = lambda y: float(jnp.linalg.norm(y - exact) / jnp.linalg.norm(exact))
    run = jax.jit(lambda a, b, c, m: lmul_attention(a, b, c, m, causal=True), static_argnums=3)
    err = {m: rel(run(q, k, v, m)) for m in (2, 3, 7)}
    rnd = {m: rel(attn(q, k, v, lambda t, m=m: round_mantissa(t, m))) for m in (2, 3, 7)}
    assert err[2] > err[3] > err[7] and err[7] < 0.06, err
    assert all(err[m] > rnd[m] for m in err), (err, rnd)
    assert err[3] < 1.5 * rnd[2]  # same order as e5m2-width rounding
    with pytest.raises(ValueError, match="expected q, k, v"):
        lmul_attention(q[0], k[0], v[0])
