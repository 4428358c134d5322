"""MX block formats against a numpy + ml_dtypes reference of the OCP MX v1.0 recipe."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from lib.ops.quant.mx import MX_FORMATS, fake_mx_quantize, mx_quantize, mx_shared_exponent

ML = {
    "mxfp8_e4m3": (ml_dtypes.float8_e4m3fn, 8),
    "mxfp8_e5m2": (ml_dtypes.float8_e5m2, 15),
    "mxfp6_e3m2": (ml_dtypes.float6_e3m2fn, 4),
    "mxfp6_e2m3": (ml_dtypes.float6_e2m3fn, 2),
    "mxfp4": (ml_dtypes.float4_e2m1fn, 2),
}


def _reference(x, fmt, block):
    """Block by block in numpy: E8M0 shared exponent, saturating element cast."""
    xb = x.reshape(-1, block).astype(np.float64)
    out = np.empty_like(xb)
    for i, v in enumerate(xb):
        amax = np.abs(v).max()
        if fmt == "mxint8":
            emax = 0
        else:
            dt, emax = ML[fmt]
        e = int(np.clip(np.floor(np.log2(amax)) - emax, -127, 127)) if amax > 0 else -127
        scaled = (v / 2.0**e).astype(np.float32)
        if fmt == "mxint8":
            q = np.clip(np.round(scaled * 64), -127, 127) / 64
        else:
            fmax = float(ml_dtypes.finfo(dt).max)
            q = np.clip(scaled, -fmax, fmax).astype(dt).astype(np.float64)
        out[i] = q * 2.0**e
    return out.reshape(x.shape).astype(np.float32)


@pytest.mark.parametrize("fmt", sorted(MX_FORMATS))
def test_mx_matches_reference(fmt):
    key = jax.random.PRNGKey(0)
    # blocks with very different magnitudes, a heavy tail and an all-zero block
    x = jax.random.t(key, 3.0, (8, 64)) * jnp.exp2(jnp.arange(8) * 3.0 - 12)[:, None]
    x = x.at[0, :32].set(0.0)
    got = jax.jit(lambda t: mx_quantize(t, fmt))(x)
    np.testing.assert_array_equal(np.asarray(got), _reference(np.asarray(x), fmt, 32))


def test_mx_axis_and_properties():
    x = jax.random.normal(jax.random.PRNGKey(1), (64, 6))
    # blocks along axis 0 equal blocks along the last axis of the transpose
    np.testing.assert_array_equal(mx_quantize(x, "mxfp4", axis=0), mx_quantize(x.T, "mxfp4").T)
    e = mx_shared_exponent(x, "mxfp8_e4m3", axis=0)
    assert e.shape == (2, 6) and e.dtype == jnp.int32
    # values already on a block's grid are kept exactly (E4M3 grid times 2**-3)
    y = jnp.asarray(np.array([0.5, 1, 1.5, -3, 448, 0.015625] * 4 + [0.0] * 8, np.float32))
    np.testing.assert_array_equal(mx_quantize(y * 2.0**-3, "mxfp8_e4m3"), y * 2.0**-3)
    g = jax.grad(lambda t: (fake_mx_quantize(t, "mxfp4", axis=0) ** 2).sum())(x)
    np.testing.assert_allclose(g, 2 * mx_quantize(x, "mxfp4", axis=0), rtol=1e-6)


def test_mx_bad_input():
    with pytest.raises(ValueError, match="not divisible by block_size=32"):
        mx_quantize(jnp.ones((4, 48)), "mxfp4")
    with pytest.raises(ValueError, match="unknown MX format"):
        mx_quantize(jnp.ones((4, 32)), "mxfp3")
