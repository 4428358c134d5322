"""QuantSpec / fake_quantize / QuantDense: formats, straight-through gradients, errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantDense, QuantSpec, fake_quantize
from lib.ops.quant.formats import dequantize_int, int_scale, quantize_fp, quantize_int
from lib.ops.quant.mx import mx_quantize


def test_fake_quantize_matches_ops():
    w = jax.random.normal(jax.random.PRNGKey(0), (16, 8))
    s, _ = int_scale(w, 4, axis=-1)
    np.testing.assert_allclose(
        fake_quantize(w, QuantSpec("int", bits=4, axis=-1)),
        dequantize_int(quantize_int(w, 4, scale=s), scale=s),
        rtol=1e-6,
    )
    fp = fake_quantize(w, QuantSpec("fp", exponent_bits=2, mantissa_bits=1))
    scale = jnp.max(jnp.abs(w)) / 6.0
    np.testing.assert_allclose(fp, quantize_fp(w / scale, 2, 1) * scale, rtol=1e-6)
    np.testing.assert_array_equal(
        fake_quantize(w, QuantSpec("mx", mx_format="mxfp4", block_size=8)),
        mx_quantize(w, "mxfp4", block_size=8),
    )
    b = fake_quantize(w, QuantSpec("binary", axis=-1))
    np.testing.assert_allclose(
        jnp.abs(b), jnp.broadcast_to(jnp.mean(jnp.abs(w), 0), w.shape), rtol=1e-6
    )
    assert fake_quantize(w, QuantSpec("none")) is w
    g = jax.grad(lambda t: jnp.sum(fake_quantize(t, QuantSpec("fp")) * 2.0))(w)
    np.testing.assert_allclose(g, 2.0)  # straight-through


def test_quant_spec_errors_and_bits():
    with pytest.raises(ValueError, match="unknown quantization kind"):
        QuantSpec("int3")
    with pytest.raises(ValueError, match="unsupported bits"):
        QuantSpec("int", bits=1)
    with pytest.raises(ValueError, match="mx_format"):
        QuantSpec("mx", mx_format="mxfp5")
    with pytest.raises(ValueError, match="lsq"):
        fake_quantize(jnp.ones(3), QuantSpec("lsq"))
    assert QuantSpec("fp", exponent_bits=4, mantissa_bits=3).bits_per_value == 8
    assert QuantSpec("mx", mx_format="mxfp4").bits_per_value == 4.25
    assert QuantSpec("binary").bits_per_value == 1


def test_quant_dense_loads_dense_params_and_error_shrinks_with_bits():
    x = jax.random.normal(jax.random.PRNGKey(1), (4, 32))
    params = nn.Dense(16).init(jax.random.PRNGKey(2), x)
    ref = nn.Dense(16).apply(params, x)
    errs = []
    for bits in (2, 4, 8):
        layer = QuantDense(
            16, weight=QuantSpec("int", bits=bits, axis=-1), act=QuantSpec("int", bits=bits)
        )
        errs.append(float(jnp.max(jnp.abs(layer.apply(params, x) - ref))))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.05
    lsq = QuantDense(16, weight=QuantSpec("lsq", bits=4))
    p = lsq.init(jax.random.PRNGKey(3), x)
    assert set(p["params"]) == {"kernel", "bias", "kernel_step"}
    g = jax.grad(lambda t: jnp.sum(lsq.apply(t, x) ** 2))(p)
    assert float(jnp.abs(g["params"]["kernel_step"])) > 0
