"""Number formats for quantization (survey: Gholami et al. 2021; FP8 vs INT8; LLM-FP4 ExMy).

Pure functions:
- `quantize_fp`: round-to-nearest-even onto any ExMy floating-point grid, saturating;
  bit-exact with `ml_dtypes` casts for float8_e4m3fn, float8_e5m2 (saturating), float4_e2m1fn.
- `quantize_int` / `dequantize_int`: uniform integer codes with a scale and optional zero point.
- `fake_quant` / `fake_quant_fp`: quantize-dequantize with a straight-through gradient.
- `int_scale`: symmetric or asymmetric scale (and zero point) per tensor, channel or group.

Shape letters: `...` any leading axes; granularity is chosen with `axis` and `group_size`.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lib.ops._checks import check_float

# name -> (exponent_bits, mantissa_bits): the formats the papers use.
FP_FORMATS = {
    "e5m2": (5, 2),
    "e4m3": (4, 3),
    "e3m4": (3, 4),
    "e3m2": (3, 2),
    "e2m3": (2, 3),
    "e2m1": (2, 1),
    "e3m0": (3, 0),
    "e1m2": (1, 2),
}


def _concrete(v):
    """`v` as a NumPy array when its value is known now (not traced), else None."""
    if v is None or isinstance(v, jax.core.Tracer):
        return None
    return np.asarray(v, np.float32)


def _checked(check):
    """Run `check(*args, **kwargs)` before the jitted function: argument errors that need
    concrete values (a zero scale, a negative max_value) are raised eagerly; under an outer
    `jit` the values are traced and only the documented behaviour applies."""

    def wrap(fn):
        @functools.wraps(fn)
        def checked(*args, **kwargs):
            check(*args, **kwargs)
            return fn(*args, **kwargs)

        return checked

    return wrap


def _check_int_args(x, bits, *, scale, zero_point=None, **_):
    check_float("x", x)
    s = _concrete(scale)
    if s is not None and not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"`scale` must be finite and > 0, got {scale!r}")


def _check_quantize_int(x, bits, *, scale, zero_point=None, **kwargs):
    _check_int_args(x, bits, scale=scale)
    xv = _concrete(x)
    if xv is not None and np.isnan(xv).any():
        raise ValueError("`x` holds NaN, which no integer code represents (use fake_quant)")


def _check_quantize_fp(x, exponent_bits, mantissa_bits, *, bias=None, max_value=None):
    check_float("x", x)
    m = _concrete(max_value)
    if m is not None and not np.all(m > 0):
        raise ValueError(f"`max_value` must be > 0, got {max_value!r}")


def _check_fp_bits(exponent_bits, mantissa_bits):
    if not (isinstance(exponent_bits, int) and 1 <= exponent_bits <= 8):
        raise ValueError(f"unsupported exponent_bits={exponent_bits!r}; expected an int in [1, 8]")
    if not (isinstance(mantissa_bits, int) and 0 <= mantissa_bits <= 10):
        raise ValueError(f"unsupported mantissa_bits={mantissa_bits!r}; expected an int in [0, 10]")


def default_bias(exponent_bits: int) -> int:
    """IEEE-style exponent bias `2**(e-1) - 1`."""
    return 2 ** (exponent_bits - 1) - 1


def fp_max_value(exponent_bits: int, mantissa_bits: int, bias=None):
    """Largest finite value of an ExMy format, following the OCP 8-bit and MX conventions.

    exponent_bits >= 5: IEEE layout, the top exponent code is kept for inf/NaN (E5M2: 57344);
    exponent_bits == 4: only the all-ones code is NaN (E4M3FN: 448);
    exponent_bits <= 3: every code is a finite number (FP6 E3M2: 28, E2M3: 7.5; FP4 E2M1: 6).

    Args:
      bias: exponent bias, a float or an array (default `2**(e-1) - 1`); a real-valued bias acts
        as LLM-FP4's flexible scale: max = (2 - 2**-m) * 2**(top - bias).
    """
    _check_fp_bits(exponent_bits, mantissa_bits)
    bias = default_bias(exponent_bits) if bias is None else bias
    top = 2**exponent_bits - 1  # largest biased exponent code
    m = mantissa_bits
    if exponent_bits >= 5:
        mant = 2.0 - 2.0**-m
        top -= 1
    elif exponent_bits == 4 and m > 0:
        mant = 2.0 - 2.0 ** (1 - m)
    elif exponent_bits == 4:  # E4M0: the all-ones code is NaN, so the top exponent is lost
        mant, top = 1.0, top - 1
    else:
        mant = 2.0 - 2.0**-m
    if isinstance(bias, int | float):  # static: a Python float, usable under jit
        return mant * 2.0 ** (top - bias)
    return mant * 2.0 ** (top - jnp.asarray(bias, jnp.float32))


def _round_to_grid(a, mantissa_bits, emin, rounding):
    """Round nonnegative float32 `a` onto the grid with min normal exponent `emin` (int array)."""
    _, ex = jnp.frexp(a)  # a = f * 2**ex, f in [0.5, 1): floor(log2 a) = ex - 1 (exact)
    e = jnp.maximum(ex - 1, emin)  # subnormals share the spacing of the lowest binade
    e = jnp.where(a > 0, e, emin)
    step_exp = e - mantissa_bits
    # a / 2**k and n * 2**k via ldexp are exact in float32 for the range used here.
    n = rounding(jnp.ldexp(a, -step_exp))
    return jnp.ldexp(n, step_exp)


@_checked(_check_quantize_fp)
@functools.partial(jax.jit, static_argnames=("exponent_bits", "mantissa_bits"))
def quantize_fp(x, exponent_bits: int, mantissa_bits: int, *, bias=None, max_value=None):
    """Round `x` to the nearest ExMy floating-point value (ties to even), saturating.

    Args:
      x: array of any shape, float32 / bfloat16 / float16 (computed in float32).
      exponent_bits, mantissa_bits: the format, e.g. (4, 3) for FP8 E4M3, (2, 1) for FP4 E2M1.
      bias: exponent bias; default `2**(e-1) - 1`. May be a real number or an array
        broadcastable to `x` (LLM-FP4's searched / per-channel bias); a fractional part
        `f` scales the grid by `2**-f`.
      max_value: saturation value; default `fp_max_value(e, m, bias)` (448 for E4M3FN, 57344
        for E5M2, 6 for E2M1). Values above it (and +-inf) become +-max; NaN stays NaN.
        A max_value that is not on the grid is rounded down onto it.

    Returns:
      array like `x` (same dtype) whose values lie on the grid. The sign of zero is kept.
    """
    _check_fp_bits(exponent_bits, mantissa_bits)
    dtype = jnp.result_type(x)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"quantize_fp needs a floating-point `x`, got dtype {dtype}")
    xf = jnp.asarray(x, jnp.float32)
    bias = jnp.asarray(default_bias(exponent_bits) if bias is None else bias, jnp.float32)
    bias_int = jnp.floor(bias)
    shift = jnp.exp2(bias - bias_int)  # 1 for an integer bias: the exact path
    emin = (1 - bias_int).astype(jnp.int32)
    a = jnp.abs(xf) * shift
    if max_value is None:  # exact, on the integer-bias grid
        cap = fp_max_value(exponent_bits, mantissa_bits, bias_int)
    else:  # the relative slack forgives float error in a user's max_value * shift
        cap = jnp.asarray(max_value, jnp.float32) * shift * (1 + 2.0**-20)
        cap = _round_to_grid(cap, mantissa_bits, emin, jnp.floor)
    q = jnp.minimum(_round_to_grid(jnp.minimum(a, cap), mantissa_bits, emin, jnp.round), cap)
    q = jnp.where(jnp.isnan(xf), jnp.nan, q / shift)
    return jnp.copysign(q, xf).astype(dtype)


def _int_range(bits: int, signed: bool, narrow_range: bool = False):
    if not (isinstance(bits, int) and 2 <= bits <= 16):
        raise ValueError(f"unsupported bits={bits!r}; integer quantization needs 2 <= bits <= 16")
    if signed:
        return -(2 ** (bits - 1)) + int(narrow_range), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1 - int(narrow_range)


def int_range(bits: int, *, signed: bool = True, narrow_range: bool = False):
    """(qmin, qmax) of a `bits`-bit integer code (signed two's complement or unsigned)."""
    return _int_range(bits, signed, narrow_range)


def _code_dtype(bits: int, signed: bool):
    if bits <= 8:
        return jnp.int8 if signed else jnp.uint8
    return jnp.int16 if signed else jnp.uint16


@_checked(_check_quantize_int)
@functools.partial(jax.jit, static_argnames=("bits", "narrow_range"))
def quantize_int(x, bits: int, *, scale, zero_point=None, narrow_range: bool = False):
    """Integer codes `clip(round(x / scale) + zero_point, qmin, qmax)` (round half to even).

    Args:
      x: float array.
      bits: 2..16.
      scale: positive step size, broadcastable to `x` (per tensor, channel or group).
      zero_point: None for symmetric signed codes in [-2**(b-1), 2**(b-1) - 1]; otherwise an
        integer-valued array broadcastable to `x` and unsigned codes in [0, 2**b - 1].
      narrow_range: drop the most negative (signed) / the largest (unsigned) code, e.g. int8
        in [-127, 127] so that the grid is symmetric.

    Returns:
      integer array like `x`: int8/uint8 for bits <= 8, else int16/uint16.

    Raises TypeError for a non-float `x`, ValueError for a `scale` <= 0 or a NaN in `x` (no
    code represents it) when their values are concrete; under `jit` NaN gives an undefined
    code. `fake_quant` propagates NaN.
    """
    signed = zero_point is None
    qmin, qmax = _int_range(bits, signed, narrow_range)
    q = jnp.round(jnp.asarray(x, jnp.float32) / scale)
    if zero_point is not None:
        q = q + jnp.round(jnp.asarray(zero_point, jnp.float32))
    return jnp.clip(q, qmin, qmax).astype(_code_dtype(bits, signed))


@functools.partial(jax.jit, static_argnames=("dtype",))
def dequantize_int(q, *, scale, zero_point=None, dtype=jnp.float32):
    """Real values `(q - zero_point) * scale` of integer codes."""
    q = jnp.asarray(q, jnp.float32)
    if zero_point is not None:
        q = q - jnp.round(jnp.asarray(zero_point, jnp.float32))
    return (q * scale).astype(dtype)


@_checked(_check_int_args)
@functools.partial(jax.jit, static_argnames=("bits", "narrow_range", "clip_gradient"))
def fake_quant(
    x, bits: int, *, scale, zero_point=None, narrow_range: bool = False, clip_gradient=True
):
    """Quantize-dequantize `x` on a `bits`-bit integer grid with a straight-through gradient.

    Forward: `dequantize_int(quantize_int(x))`. Backward: identity with respect to `x` (inside
    the representable range only when `clip_gradient`, the usual clipped STE); `scale` and
    `zero_point` get no gradient (see `quant_lsq.lsq_quant` for a learned step size).

    Returns:
      array like `x` (same dtype); NaN where `x` is NaN. A non-float `x` is a TypeError and a
      concrete `scale` <= 0 a ValueError.
    """
    qmin, qmax = _int_range(bits, zero_point is None, narrow_range)
    xq = dequantize_int(
        quantize_int(x, bits, scale=scale, zero_point=zero_point, narrow_range=narrow_range),
        scale=scale,
        zero_point=zero_point,
        dtype=jnp.result_type(x),
    )
    scale = jax.lax.stop_gradient(scale)
    zp = 0.0 if zero_point is None else jax.lax.stop_gradient(jnp.round(zero_point))
    out = x + jax.lax.stop_gradient(xq - x)
    if clip_gradient:
        lo, hi = (qmin - zp) * scale, (qmax - zp) * scale
        inside = (x >= lo) & (x <= hi)
        out = jnp.where(inside, out, jax.lax.stop_gradient(out))
    return jnp.where(jnp.isnan(x), x, out)


def fake_quant_fp(x, exponent_bits: int, mantissa_bits: int, *, bias=None, max_value=None):
    """`quantize_fp` forward with an identity (straight-through) gradient for `x`."""
    q = quantize_fp(
        jax.lax.stop_gradient(x), exponent_bits, mantissa_bits, bias=bias, max_value=max_value
    )
    return x + jax.lax.stop_gradient(q - x)


def _reduce_axes(x, axis, group_size):
    """Reshape for the granularity: returns (x_grouped, reduce_axes, restore)."""
    ndim = jnp.ndim(x)
    for a in () if axis is None else (axis,) if isinstance(axis, int) else axis:
        if not isinstance(a, int) or not -ndim <= a < ndim:
            raise ValueError(f"`axis` {axis!r} is out of range for an array of rank {ndim}")
    if group_size is None:
        if axis is None:
            return x, tuple(range(ndim)), lambda s: s
        keep = {a % ndim for a in ((axis,) if isinstance(axis, int) else axis)}
        return x, tuple(a for a in range(ndim) if a not in keep), lambda s: s
    ax = -1 if axis is None else axis
    if not isinstance(ax, int):
        raise ValueError("group_size needs a single `axis` to split into groups")
    ax %= ndim
    n = x.shape[ax]
    if n % group_size:
        raise ValueError(
            f"axis {ax} of size {n} is not divisible by group_size={group_size} (shape {x.shape})"
        )
    shape = x.shape[:ax] + (n // group_size, group_size) + x.shape[ax + 1 :]
    xg = x.reshape(shape)

    def restore(s):
        return jnp.broadcast_to(s, shape).reshape(x.shape)

    return xg, (ax + 1,), restore


@functools.partial(
    jax.jit, static_argnames=("bits", "symmetric", "axis", "group_size", "narrow_range", "eps")
)
def int_scale(
    x,
    bits: int,
    *,
    symmetric: bool = True,
    axis=None,
    group_size=None,
    narrow_range: bool = False,
    eps: float = 1e-12,
):
    """Min-max scale (and zero point) for integer quantization at a chosen granularity.

    Args:
      x: float array.
      bits: 2..16.
      symmetric: scale = max|x| / qmax and zero_point None; else scale = (max - min) /
        (2**b - 1) and an integer zero point putting 0.0 exactly on the grid.
      axis: None for per-tensor; an int or a tuple (not a list: it is a static jit argument)
        of ints for per-channel (the axes KEPT, e.g.
        axis=-1 for one scale per output column of a `[in, out]` kernel).
      group_size: per-group: `axis` (default -1) is split into groups of this many elements,
        each with its own scale; its size must be divisible by `group_size`.

    Returns:
      (scale, zero_point), each broadcastable to `x` (zero_point None when symmetric).
    """
    qmin, qmax = _int_range(bits, symmetric, narrow_range)
    x = jnp.asarray(x, jnp.float32)
    xg, red, restore = _reduce_axes(x, axis, group_size)
    if symmetric:
        amax = jnp.max(jnp.abs(xg), axis=red, keepdims=True)
        return restore(jnp.maximum(amax / qmax, eps)), None
    lo = jnp.minimum(jnp.min(xg, axis=red, keepdims=True), 0.0)
    hi = jnp.maximum(jnp.max(xg, axis=red, keepdims=True), 0.0)
    scale = jnp.maximum((hi - lo) / (qmax - qmin), eps)
    zero_point = jnp.clip(jnp.round(qmin - lo / scale), qmin, qmax)
    return restore(scale), restore(zero_point)
