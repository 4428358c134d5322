"""PTQ calibration: min-max / percentile / MSE, LLM-FP4 format search and bias folding."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.quant.calib import (
    calibrate_int,
    fold_activation_scales,
    fp_bias_for_max,
    quantize_folded_weight,
    search_fp_format,
)
from lib.ops.quant.formats import dequantize_int, quantize_fp, quantize_int


def _mse(x, scale):
    """Mean squared error of `x` quantized to int4 at `scale` (a scalar array)."""
    return jnp.mean((dequantize_int(quantize_int(x, 4, scale=scale), scale=scale) - x) ** 2)


def test_calibrators_on_heavy_tails():
    x = jax.random.t(jax.random.PRNGKey(0), 2.0, (20000,))
    s_mm, _ = calibrate_int(x, 4, method="minmax")
    s_pc, _ = calibrate_int(x, 4, method="percentile", percentile=99.9)
    s_mse, _ = calibrate_int(x, 4, method="mse")
    np.testing.assert_allclose(s_mm, jnp.max(jnp.abs(x)) / 7, rtol=1e-6)
    np.testing.assert_allclose(s_pc, jnp.percentile(jnp.abs(x), 99.9) / 7, rtol=1e-5)
    # heavy tails: clipping beats min-max, and the MSE search is best of all
    assert _mse(x, s_mse) <= _mse(x, s_pc) < _mse(x, s_mm)
    # the search is optimal over a finer brute-force grid to within its resolution (one
    # vmapped, jitted call for the 400 scales)
    brute = jnp.min(jax.jit(jax.vmap(_mse, (None, 0)))(x, s_mm * jnp.linspace(0.05, 1, 400)))
    assert _mse(x, s_mse) <= 1.05 * brute
    s_ch, _ = calibrate_int(x.reshape(100, 200), 4, method="mse", axis=-1)
    assert s_ch.shape == (1, 200)
    with pytest.raises(ValueError, match="unknown calibration method"):
        calibrate_int(x, 4, method="kl")


def test_fp_bias_for_max_roundtrip():
    for e, m in [(2, 1), (3, 0), (1, 2), (4, 3)]:
        b = fp_bias_for_max(e, m, 3.7)
        assert float(jnp.max(quantize_fp(jnp.array([1e9]), e, m, bias=b))) == pytest.approx(3.7)


def test_llm_fp4_search_beats_fixed_format():
    key = jax.random.PRNGKey(1)
    x = jax.random.normal(key, (4096,)) * 0.02  # a weight-like tensor, far from the E2M1 range
    res = search_fp_format(x, 4)
    xq = quantize_fp(x, res["exponent_bits"], res["mantissa_bits"], bias=res["bias"])
    mse = float(jnp.mean((xq - x) ** 2))
    assert mse == pytest.approx(res["mse"], rel=1e-5)
    # a fixed E2M1 scaled by max|x| (no clip search) is worse
    b0 = fp_bias_for_max(2, 1, jnp.max(jnp.abs(x)))
    assert mse < float(jnp.mean((quantize_fp(x, 2, 1, bias=b0) - x) ** 2))
    # per-channel biases are at least as good as one per tensor
    xc = x.reshape(64, 64) * jnp.exp(jnp.linspace(-2, 2, 64))
    per_t = search_fp_format(xc, 4, exponent_bits_options=[2])
    per_c = search_fp_format(xc, 4, exponent_bits_options=[2], axis=-1)
    assert per_c["bias"].shape == (1, 64) and per_c["mse"] <= per_t["mse"]
    with pytest.raises(ValueError, match="cannot split"):
        search_fp_format(x, 4, exponent_bits_options=[4])


def test_fold_activation_scales_is_exponent_bias_shift_and_helps():
    key1, key2 = jax.random.split(jax.random.PRNGKey(2))
    c = 32
    ranges = jnp.exp2(jnp.arange(c) % 8 - 4.0)
    x = jax.random.normal(key1, (256, c)) * ranges  # channel-wise ranges over 2**7
    # every channel contributes equally to x @ w (weights small where activations are large)
    w = jax.random.normal(key2, (c, 16)) * 0.2 / ranges[:, None]
    f = fold_activation_scales(x, w)
    bw = search_fp_format(w, 4, exponent_bits_options=[2], axis=-1)["bias"]  # per column
    wq = quantize_fp(w, 2, 1, bias=bw)
    wf = quantize_folded_weight(w, f, 2, 1, bias=bw)
    # the shifted weight lies exactly on the grid with exponent bias bias_w + k: no rounding
    # (to float32 rounding of the real-valued bias's 2**frac factor)
    np.testing.assert_allclose(quantize_fp(wf, 2, 1, bias=bw + f["bias_offset"]), wf, rtol=1e-6)
    np.testing.assert_array_equal(wf * f["act_multiplier"][:, None], wq)
    # exact arithmetic is unchanged
    np.testing.assert_allclose(
        (x * f["act_multiplier"]) @ (w / f["act_multiplier"][:, None]), x @ w, rtol=1e-5, atol=1e-5
    )

    def w4a4_err(xa, wa_q):
        bx = search_fp_format(xa, 4, exponent_bits_options=[2])["bias"]
        return float(jnp.mean((quantize_fp(xa, 2, 1, bias=bx) @ wa_q - x @ w) ** 2))

    assert w4a4_err(x * f["act_multiplier"], wf) < 0.5 * w4a4_err(x, wq)
    with pytest.raises(ValueError, match="must have shape"):
        fold_activation_scales(x, w.T)
