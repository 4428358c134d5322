"""LSQ step-size gradient against its formula; quantized backward; LSQ lowers error."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

from lib.ops.quant.formats import fake_quant
from lib.ops.quant.lsq import fake_quant_qbwd, lsq_init_step, lsq_quant, quantize_grad


def test_lsq_forward_and_gradients_match_paper_formula():
    x = jnp.linspace(-3.0, 3.0, 61)
    s, bits = 0.25, 3  # signed 3-bit codes: [-4, 3]
    y = lsq_quant(x, jnp.float32(s), bits, gradient_scale=1.0)
    ref = np.clip(np.round(np.asarray(x) / s), -4, 3) * s
    np.testing.assert_allclose(y, ref, atol=1e-6)
    gx, gs = jax.grad(lambda t, st: lsq_quant(t, st, bits, gradient_scale=1.0).sum(), (0, 1))(
        x, jnp.float32(s)
    )
    v = np.asarray(x) / s
    inside = (v >= -4) & (v <= 3)
    np.testing.assert_array_equal(gx, inside.astype(np.float32))
    ds = np.where(v < -4, -4.0, np.where(v > 3, 3.0, -v + np.round(v)))
    np.testing.assert_allclose(gs, ds.sum(), rtol=1e-5, atol=1e-5)
    # the default gradient scale is 1 / sqrt(numel * qmax)
    gs_default = jax.grad(lambda st: lsq_quant(x, st, bits).sum())(jnp.float32(s))
    np.testing.assert_allclose(gs_default, ds.sum() / np.sqrt(61 * 3), rtol=1e-5, atol=1e-6)


def test_lsq_learns_a_better_step_than_its_init():
    x = jax.random.normal(jax.random.PRNGKey(0), (4096,))
    bits = 3
    loss = jax.jit(lambda s: jnp.mean((lsq_quant(x, s, bits) - x) ** 2))
    s = s0 = lsq_init_step(x, bits)
    grad = jax.jit(jax.grad(loss))
    for _ in range(200):
        s = s - 0.5 * grad(s)
    assert float(loss(s)) < 0.9 * float(loss(s0))


@pytest.mark.parametrize("grad_bits", [None, 8])
def test_quantize_grad_quantizes_cotangent(grad_bits):
    x = jax.random.normal(jax.random.PRNGKey(1), (128,))
    w = jax.random.normal(jax.random.PRNGKey(2), (128,)) * jnp.exp(jnp.linspace(-6, 2, 128))
    y, vjp = jax.vjp(lambda t: quantize_grad(t, grad_bits), x)
    np.testing.assert_array_equal(y, x)
    (g,) = vjp(w)
    amax = float(jnp.max(jnp.abs(w)))
    wn = np.asarray(w, np.float32)
    if grad_bits is None:  # E5M2 after scaling max|g| onto 57344
        scale = amax / 57344.0
        ref = (wn / scale).astype(ml_dtypes.float8_e5m2).astype(np.float32) * scale
    else:
        scale = amax / 127
        ref = np.clip(np.round(wn / scale), -127, 127) * scale
    np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-12)
    assert not np.array_equal(np.asarray(g), wn)  # something was actually rounded


def test_fake_quant_qbwd_composes_forward_and_backward():
    x = jnp.linspace(-1.0, 1.0, 64)
    y = fake_quant_qbwd(x, 4, scale=0.2, grad_bits=4)
    np.testing.assert_array_equal(y, fake_quant(x, 4, scale=0.2))
    w = jnp.linspace(0.0, 1.0, 64)
    g = jax.grad(lambda t: (fake_quant_qbwd(t, 4, scale=0.2, grad_bits=4) * w).sum())(x)
    assert len(np.unique(np.asarray(g))) <= 9  # 4-bit narrow-range gradient codes
