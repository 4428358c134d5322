"""Number formats: quantize_fp bit-exact with ml_dtypes; integer codes, scales, fake quant."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from lib.ops.quant.formats import (
    dequantize_int,
    fake_quant,
    fake_quant_fp,
    fp_max_value,
    int_scale,
    quantize_fp,
    quantize_int,
)

# (ml_dtypes type, exponent bits, mantissa bits, explicit max_value or None for the default)
FORMATS = [
    (ml_dtypes.float8_e4m3fn, 4, 3, None),
    (ml_dtypes.float8_e5m2, 5, 2, None),
    (ml_dtypes.float4_e2m1fn, 2, 1, None),
    (ml_dtypes.float6_e3m2fn, 3, 2, None),
    (ml_dtypes.float6_e2m3fn, 2, 3, None),
    (ml_dtypes.float8_e3m4, 3, 4, float(ml_dtypes.finfo(ml_dtypes.float8_e3m4).max)),
]


def _all_values(dt):
    """Every finite nonnegative value of an ml_dtypes format, sorted (float64)."""
    nbits = ml_dtypes.finfo(dt).bits
    v = np.arange(2**nbits, dtype=np.uint8).view(dt).astype(np.float32)
    v = v[np.isfinite(v)]
    return np.unique(v[v >= 0]).astype(np.float64)


def _bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


@pytest.mark.parametrize("dt,e,m,max_value", FORMATS, ids=lambda p: getattr(p, "__name__", None))
def test_quantize_fp_exhaustive_bit_exact(dt, e, m, max_value):
    v = _all_values(dt)
    mids = ((v[1:] + v[:-1]) / 2).astype(np.float32)  # exact: grids of <= 8 bits
    x = np.concatenate(
        [v, mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(0))]
    ).astype(np.float32)
    x = np.concatenate([x, -x])
    ref = x.astype(dt).astype(np.float32)
    got = np.asarray(quantize_fp(jnp.asarray(x), e, m, max_value=max_value))
    np.testing.assert_array_equal(_bits(got), _bits(ref))  # includes the sign of zero


@pytest.mark.parametrize(
    "dt,e,m,max_value", FORMATS[:3], ids=lambda p: getattr(p, "__name__", None)
)
def test_quantize_fp_random_and_saturation(dt, e, m, max_value):
    rng = np.random.default_rng(0)
    mag = np.exp2(rng.uniform(-30, 25, 20000)).astype(np.float32)
    x = mag * rng.choice([-1, 1], mag.shape).astype(np.float32)
    vmax = float(ml_dtypes.finfo(dt).max)
    ref = np.clip(x, -vmax, vmax).astype(dt).astype(np.float32)  # saturating cast
    got = np.asarray(quantize_fp(jnp.asarray(x), e, m))
    np.testing.assert_array_equal(_bits(got), _bits(ref))
    assert float(fp_max_value(e, m)) == vmax
    special = quantize_fp(jnp.array([jnp.inf, -jnp.inf, jnp.nan, 1e30]), e, m)
    np.testing.assert_array_equal(np.asarray(special)[[0, 1, 3]], [vmax, -vmax, vmax])
    assert np.isnan(special[2])


def test_quantize_fp_bfloat16_input_and_jit():
    x = jax.random.normal(jax.random.PRNGKey(0), (257,)) * 30
    ref = np.asarray(x.astype(jnp.bfloat16)).astype(np.float32).astype(ml_dtypes.float8_e4m3fn)
    got = jax.jit(lambda t: quantize_fp(t, 4, 3))(x.astype(jnp.bfloat16))
    assert got.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got, np.float32), ref.astype(np.float32))


def test_quantize_fp_bias_scales_grid():
    x = jax.random.normal(jax.random.PRNGKey(1), (1000,)) * 10
    # an integer bias shift of +1 halves every grid point (and the max value)
    np.testing.assert_array_equal(quantize_fp(x, 4, 3, bias=8), quantize_fp(2 * x, 4, 3) / 2)
    # a real-valued bias b + f scales the grid by 2**-f (LLM-FP4's flexible bias)
    s = 2.0**0.5
    np.testing.assert_allclose(
        quantize_fp(x, 2, 1, bias=1.5), quantize_fp(x * s, 2, 1) / s, rtol=1e-6
    )
    # a per-channel bias array broadcasts like a per-channel scale
    xc = x.reshape(250, 4)
    bias = jnp.array([1.0, 2.0, 3.0, 4.0])
    cols = [quantize_fp(xc[:, i], 2, 1, bias=float(bias[i])) for i in range(4)]
    np.testing.assert_array_equal(quantize_fp(xc, 2, 1, bias=bias), jnp.stack(cols, 1))
    assert float(fp_max_value(2, 1, bias=2.0)) == 3.0


def test_quantize_fp_bad_input():
    with pytest.raises(ValueError, match="exponent_bits"):
        quantize_fp(jnp.ones(3), 0, 3)
    with pytest.raises(ValueError, match="mantissa_bits"):
        quantize_fp(jnp.ones(3), 4, -1)
    with pytest.raises(TypeError, match="floating-point"):
        quantize_fp(jnp.ones(3, jnp.int32), 4, 3)


def test_quantize_int_matches_numpy_reference():
    x = np.asarray(jax.random.normal(jax.random.PRNGKey(2), (64, 8)), np.float32) * 3
    for bits in (2, 4, 8):
        q = quantize_int(x, bits, scale=0.1)
        ref = np.clip(np.round(x / np.float32(0.1)), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
        np.testing.assert_array_equal(np.asarray(q, np.float32), ref)
        assert q.dtype == jnp.int8
    qa = quantize_int(x, 4, scale=0.5, zero_point=7)
    assert qa.dtype == jnp.uint8 and int(qa.min()) >= 0 and int(qa.max()) <= 15
    assert int(quantize_int(jnp.array([-9.0]), 8, scale=0.01, narrow_range=True)[0]) == -127
    assert quantize_int(x, 12, scale=0.001).dtype == jnp.int16
    for bad in (1, 17, 4.0):
        with pytest.raises(ValueError, match="bits"):
            quantize_int(x, bad, scale=0.1)


@pytest.mark.parametrize("symmetric", [True, False])
def test_int_scale_granularities(symmetric):
    x = jax.random.normal(jax.random.PRNGKey(3), (16, 64)) * jnp.arange(1, 65) + 0.5
    for kw, n_scales in [({}, 1), ({"axis": -1}, 64), ({"axis": -1, "group_size": 16}, 64)]:
        scale, zp = int_scale(x, 4, symmetric=symmetric, **kw)
        assert jnp.broadcast_shapes(scale.shape, x.shape) == x.shape
        assert np.unique(np.asarray(jnp.broadcast_to(scale, x.shape))).size == n_scales
        xq = dequantize_int(
            quantize_int(x, 4, scale=scale, zero_point=zp), scale=scale, zero_point=zp
        )
        # min-max scales never clip: error at most half a step everywhere
        assert bool(jnp.all(jnp.abs(xq - x) <= scale / 2 * (1 + 1e-5)))
        if not symmetric:  # zero is exactly representable
            z = dequantize_int(
                quantize_int(jnp.zeros_like(x), 4, scale=scale, zero_point=zp),
                scale=scale,
                zero_point=zp,
            )
            np.testing.assert_array_equal(z, 0.0)
    # a group scale differs along the grouped axis every 16 elements (here rows are groups)
    s, _ = int_scale(x, 4, axis=0, group_size=4)
    assert s.shape == x.shape and bool(jnp.all(s[0:4] == s[0])) and bool(jnp.any(s[0] != s[4]))
    with pytest.raises(ValueError, match="not divisible by group_size=24"):
        int_scale(x, 4, axis=-1, group_size=24)


def test_fake_quant_forward_and_straight_through_gradient():
    x = jnp.linspace(-2.0, 2.0, 101)
    scale = 0.1  # int4 symmetric range: [-0.8, 0.7]
    y = fake_quant(x, 4, scale=scale)
    np.testing.assert_allclose(y, dequantize_int(quantize_int(x, 4, scale=scale), scale=scale))
    g = jax.grad(lambda t: fake_quant(t, 4, scale=scale).sum())(x)
    inside = (x >= -0.8) & (x <= 0.7)
    np.testing.assert_array_equal(g, inside.astype(jnp.float32))
    g_plain = jax.grad(lambda t: fake_quant(t, 4, scale=scale, clip_gradient=False).sum())(x)
    np.testing.assert_array_equal(g_plain, 1.0)
    g_fp = jax.grad(lambda t: (fake_quant_fp(t, 2, 1) * t).sum())(x)
    np.testing.assert_allclose(g_fp, quantize_fp(x, 2, 1) + x, rtol=1e-6)
