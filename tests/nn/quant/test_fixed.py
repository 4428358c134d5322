"""Fixed-grid and per-token quantizers behind the cells' `quant=` option (lib.nn.quant.layers)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantConfig, QuantSpec, fake_quantize_fixed, fake_quantize_tokens
from lib.ops.quant.formats import quantize_fp


def test_fixed_int_grids_saturate_with_clipped_ste():
    x = jnp.linspace(-3.0, 3.0, 601) + 1e-3  # no point on a rounding tie
    spec = QuantSpec("int", bits=4)
    y = fake_quantize_fixed(x, spec, 2.0)  # signed: k * 2 / 7, |k| <= 7
    k = np.asarray(y) * 7 / 2
    np.testing.assert_allclose(k, np.round(k), atol=1e-5)
    assert set(np.round(k).astype(int)) == set(range(-7, 8))
    np.testing.assert_allclose(y, np.clip(np.round(np.asarray(x) * 3.5) / 3.5, -2, 2), atol=1e-6)
    u = fake_quantize_fixed(x, spec, 1.0, signed=False)  # unsigned: k / 15, 0 <= k <= 15
    np.testing.assert_allclose(u, np.clip(np.round(np.asarray(x) * 15) / 15, 0, 1), atol=1e-6)
    g = jax.grad(lambda t: jnp.sum(fake_quantize_fixed(t, spec, 2.0)))(x)
    np.testing.assert_array_equal(g, (jnp.abs(x) <= 2.0).astype(jnp.float32))


def test_fixed_fp_grid_is_the_scaled_exmy_grid():
    x = jax.random.normal(jax.random.PRNGKey(0), (200,)) * 3
    spec = QuantSpec("fp", exponent_bits=2, mantissa_bits=1)  # E2M1: max 6
    y = fake_quantize_fixed(x, spec, 3.0)
    np.testing.assert_allclose(y, quantize_fp(jnp.clip(x, -3, 3) * 2.0, 2, 1) / 2.0, atol=1e-6)
    assert float(jnp.max(jnp.abs(y))) == 3.0
    with pytest.raises(ValueError, match="fixed-grid"):
        fake_quantize_fixed(x, QuantSpec("binary"), 1.0)


def test_per_token_scales_do_not_depend_on_other_tokens():
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 16)) * jnp.arange(1, 6)[:, None]
    for spec in (
        QuantSpec("int", bits=4),
        QuantSpec("fp", exponent_bits=2, mantissa_bits=1),
        QuantSpec("int", bits=4, group_size=8),
    ):
        full = fake_quantize_tokens(x, spec)
        one = jnp.stack([fake_quantize_tokens(x[:, t], spec) for t in range(5)], 1)
        np.testing.assert_array_equal(full, one)
        np.testing.assert_allclose(  # each token's largest magnitude is on its own grid
            jnp.max(jnp.abs(full), -1), jnp.max(jnp.abs(x), -1), rtol=1e-6
        )
    with pytest.raises(ValueError, match="no axis"):
        fake_quantize_tokens(x, QuantSpec("int", bits=8, axis=-1))


def test_quant_config_builders():
    cfg = QuantConfig.int_bits(6, state=None, state_range=2.0)
    assert cfg.weight == QuantSpec("int", bits=6, axis=-1) and cfg.state is None
    assert cfg.state_fn(1.0) is None and not cfg.quantizes_state
    h = QuantConfig.int_bits(3).state_fn(1.0)(jnp.array([0.2, -0.9, 5.0]))
    np.testing.assert_allclose(h, [1 / 3, -1.0, 1.0], atol=1e-6)  # grid k/3, saturating
    sig = QuantConfig.int_bits(2).gate_fn(jax.nn.sigmoid)(jnp.array([-10.0, 0.0, 10.0]))
    np.testing.assert_allclose(sig, [0.0, 2 / 3, 1.0], atol=1e-6)  # unsigned grid k/3
