"""Post-training calibration: min-max, percentile, MSE search, and LLM-FP4 (Liu et al. 2023).

Integer calibrators return `(scale, zero_point)` like `quant.int_scale`. LLM-FP4 searches the
exponent/mantissa split and the maximum value (equivalently a real-valued exponent bias) of a
floating-point format jointly, and folds per-channel activation scales (powers of two) into
the weights' exponent bias so that the activation keeps one per-tensor format.
"""

import functools

import jax
import jax.numpy as jnp

from lib.ops.quant.formats import (
    dequantize_int,
    fp_max_value,
    int_range,
    int_scale,
    quantize_fp,
    quantize_int,
)

CALIBRATORS = ("minmax", "percentile", "mse")


def _kept_axes_reduce(x, axis, fn):
    """Apply a reduction `fn(x, axes)` over every axis except `axis` (None: all), keepdims."""
    if axis is None:
        return fn(x, tuple(range(x.ndim)))
    keep = {a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
    return fn(x, tuple(a for a in range(x.ndim) if a not in keep))


def calibrate_percentile(x, bits: int, *, percentile: float = 99.99, axis=None):
    """Symmetric scale clipping at the `percentile` of |x| (per tensor or per kept `axis`)."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    _, qmax = int_range(bits)
    a = jnp.abs(jnp.asarray(x, jnp.float32))
    clip = _kept_axes_reduce(
        a, axis, lambda t, ax: jnp.percentile(t, percentile, axis=ax, keepdims=True)
    )
    return jnp.maximum(clip / qmax, 1e-12), None


def calibrate_mse(x, bits: int, *, axis=None, num_candidates: int = 100, min_ratio=0.05):
    """Symmetric scale minimising the quantization MSE over clip ratios of max|x|.

    Candidates are `max|x| * r` for `num_candidates` ratios `r` evenly in [min_ratio, 1].
    """
    ratios = jnp.linspace(min_ratio, 1.0, num_candidates)
    return _mse_search(jnp.asarray(x, jnp.float32), ratios, bits, axis), None


@functools.partial(jax.jit, static_argnums=(2, 3))
def _mse_search(x, ratios, bits, axis):
    _, qmax = int_range(bits)
    amax = _kept_axes_reduce(jnp.abs(x), axis, lambda t, ax: jnp.max(t, axis=ax, keepdims=True))

    def err(r):
        scale = jnp.maximum(amax * r / qmax, 1e-12)
        xq = dequantize_int(quantize_int(x, bits, scale=scale), scale=scale)
        return _kept_axes_reduce((xq - x) ** 2, axis, lambda t, ax: jnp.mean(t, ax, keepdims=True))

    errs = jax.lax.map(err, ratios)  # [num_candidates, ...kept]
    best = ratios[jnp.argmin(errs, axis=0)]
    return jnp.maximum(amax * best / qmax, 1e-12)


def calibrate_int(x, bits: int, *, method: str = "minmax", axis=None, **kwargs):
    """Dispatch to a calibrator in `CALIBRATORS`; returns `(scale, zero_point)`."""
    if method == "minmax":
        return int_scale(x, bits, axis=axis, **kwargs)
    if method == "percentile":
        return calibrate_percentile(x, bits, axis=axis, **kwargs)
    if method == "mse":
        return calibrate_mse(x, bits, axis=axis, **kwargs)
    raise ValueError(f"unknown calibration method={method!r}; expected one of {CALIBRATORS}")


def fp_bias_for_max(exponent_bits: int, mantissa_bits: int, max_value):
    """The real-valued exponent bias whose format has largest value `max_value`."""
    return jnp.log2(fp_max_value(exponent_bits, mantissa_bits, bias=0.0) / max_value)


def search_fp_format(
    x,
    total_bits: int = 4,
    *,
    exponent_bits_options=None,
    num_candidates: int = 50,
    ratio_range=(0.3, 1.2),
    axis=None,
):
    """LLM-FP4's joint search of the exponent bits and the clipping value (bias) by MSE.

    Args:
      x: tensor to quantize (weights, or calibration activations).
      total_bits: sign + exponent + mantissa bits.
      exponent_bits_options: exponent splits to try (default 1 .. total_bits - 1).
      num_candidates: maximum values tried per split, `max|x| * r` for `r` in `ratio_range`.
      axis: None for one format per tensor; kept axes for a per-channel maximum value
        (bias) with a per-tensor exponent split.

    Returns:
      dict with `exponent_bits`, `mantissa_bits` (ints), `bias` (float array, per channel if
      `axis`), `max_value` and `mse`.
    """
    x = jnp.asarray(x, jnp.float32)
    if exponent_bits_options is None:
        exponent_bits_options = range(1, total_bits)
    ratios = jnp.linspace(*ratio_range, num_candidates)
    best = None
    for e in exponent_bits_options:
        m = total_bits - 1 - e
        if m < 0 or e < 1:
            raise ValueError(f"cannot split {total_bits} bits into sign + {e} exponent bits")
        bias, mse = _fp_clip_search(x, ratios, e, m, axis)
        mse = float(mse)
        if best is None or mse < best["mse"]:
            best = {"exponent_bits": e, "mantissa_bits": m, "bias": bias, "mse": mse}
    best["max_value"] = fp_max_value(best["exponent_bits"], best["mantissa_bits"], best["bias"])
    return best


@functools.partial(jax.jit, static_argnums=(2, 3, 4))
def _fp_clip_search(x, ratios, e, m, axis):
    """Best bias (per kept axes) over clip values `max|x| * ratios`, and its mean MSE."""
    amax = _kept_axes_reduce(jnp.abs(x), axis, lambda t, ax: jnp.max(t, axis=ax, keepdims=True))
    amax = jnp.maximum(amax, 1e-12)

    def err(r):
        bias = fp_bias_for_max(e, m, amax * r)
        xq = quantize_fp(x, e, m, bias=bias)
        mse = _kept_axes_reduce((xq - x) ** 2, axis, lambda t, ax: jnp.mean(t, ax, keepdims=True))
        return mse, bias

    errs, biases = jax.lax.map(err, ratios)
    idx = jnp.argmin(errs, axis=0)[None]
    bias = jnp.take_along_axis(biases, idx, 0)[0]
    return bias, jnp.mean(jnp.take_along_axis(errs, idx, 0))


def fold_activation_scales(x_calib, w):
    """LLM-FP4's pre-shifted exponent bias: per-channel activation scales moved into weights.

    Activations `x: [..., c]` with per-channel ranges `a_c = max|x[..., c]|` are multiplied by
    `2**k_c` (integer `k_c = floor(log2(max_c a_c / a_c))`, so every channel fills the
    per-tensor activation format) and the weight rows `w: [c, out]` by `2**-k_c`. The weight is
    quantized as before, `Q(w; bias_w)`, and then shifted: `2**-k_c * Q(w; bias_w)` lies exactly
    on the same format's grid with exponent bias `bias_w + k_c`, so the per-channel activation
    scale costs no extra rounding and no extra multiply: it lives in the weights' exponent
    bias. `x @ w` is unchanged in exact arithmetic.

    Args:
      x_calib: calibration activations `[..., c]`.
      w: weights `[c, out]` (only its shape is checked).

    Returns:
      dict with `shift` (`k: [c]` int32), `act_multiplier` (`2**k: [c]`) and `bias_offset`
      (`k[:, None]` as float, `[c, 1]`: add it to the weights' exponent bias).
    """
    c = jnp.shape(x_calib)[-1]
    if jnp.ndim(w) != 2 or w.shape[0] != c:
        raise ValueError(f"`w` must have shape ({c}, out) to match x's channels, got {w.shape}")
    a = jnp.max(jnp.abs(jnp.asarray(x_calib, jnp.float32)).reshape(-1, c), axis=0)
    a = jnp.maximum(a, 1e-12)
    k = jnp.floor(jnp.log2(jnp.max(a) / a)).astype(jnp.int32)
    mult = jnp.exp2(k.astype(jnp.float32))
    return {"shift": k, "act_multiplier": mult, "bias_offset": k[:, None].astype(jnp.float32)}


def quantize_folded_weight(w, fold, exponent_bits: int, mantissa_bits: int, *, bias=None):
    """`2**-k[:, None] * quantize_fp(w, e, m, bias=bias)`: the weight that meets `x * 2**k`."""
    q = quantize_fp(w, exponent_bits, mantissa_bits, bias=bias)
    return q / fold["act_multiplier"][:, None]
