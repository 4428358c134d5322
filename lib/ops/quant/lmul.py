"""L-Mul: multiplication by integer addition (Luo & Sun 2024, "Addition is All You Need").

For `x = (1 + x_m) 2**x_e` and `y = (1 + y_m) 2**y_e` with `k`-bit mantissas,
`L-Mul(x, y) = (1 + x_m + y_m + 2**-l(k)) 2**(x_e + y_e)`, `l(k) = k (k <= 3), 3 (k = 4),
4 (k > 4)`: the mantissa product `x_m y_m` is replaced by a constant offset. In hardware (and
here, bit for bit) it is ONE integer addition of the two operands' exponent+mantissa bit fields
minus the exponent bias plus the offset; a mantissa carry flows into the exponent, so when
`x_m + y_m + 2**-l >= 1` the result is `(x_m + y_m + 2**-l) 2**(x_e + y_e + 1)`.
The sign is the XOR of the signs; a zero operand gives zero; results below the smallest
normal float32 flush to zero and above the largest become inf.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from lib.ops.quant.formats import quantize_fp

_MANT = 23  # float32 mantissa bits
_BIAS_FIELD = np.uint32(127 << _MANT)


def lmul_offset_exponent(mantissa_bits: int) -> int:
    """The paper's `l(k)`: the offset term is `2**-l(k)`."""
    if not (isinstance(mantissa_bits, int) and 1 <= mantissa_bits <= _MANT):
        raise ValueError(f"unsupported mantissa_bits={mantissa_bits!r}; expected 1..23")
    k = mantissa_bits
    return k if k <= 3 else (3 if k == 4 else 4)


def round_mantissa(x, mantissa_bits: int):
    """Round float32 `x` to `mantissa_bits` mantissa bits (ties to even), float32 exponent range."""
    return quantize_fp(jnp.asarray(x, jnp.float32), 8, mantissa_bits, max_value=3.0e38)


@functools.partial(jax.jit, static_argnames=("mantissa_bits", "round_inputs"))
def lmul(x, y, mantissa_bits: int = 4, *, round_inputs: bool = True):
    """Elementwise L-Mul of `x` and `y` (broadcast), emulated on float32 bit patterns.

    Args:
      x, y: float arrays, broadcastable.
      mantissa_bits: `k`, the operands' (and the result's) mantissa bits.
      round_inputs: first round both operands to `k` mantissa bits (ties to even); if False
        they must already be on that grid (extra low bits would leak into the sum).

    Returns:
      float32 array, the broadcast shape of `x` and `y`; every result has <= k mantissa bits.
    """
    l = lmul_offset_exponent(mantissa_bits)
    x = jnp.asarray(x, jnp.float32)
    y = jnp.asarray(y, jnp.float32)
    if round_inputs:
        x, y = round_mantissa(x, mantissa_bits), round_mantissa(y, mantissa_bits)
    xb = jax.lax.bitcast_convert_type(x, jnp.uint32)
    yb = jax.lax.bitcast_convert_type(y, jnp.uint32)
    sign = (xb ^ yb) & np.uint32(1 << 31)
    field = np.uint32((1 << 31) - 1)
    total = (xb & field) + (yb & field)  # < 2**32: no wrap-around in uint32
    offset = np.uint32(1 << (_MANT - l))
    total = total + offset
    underflow = total < _BIAS_FIELD + np.uint32(1 << _MANT)  # exponent field would be <= 0
    overflow = total >= _BIAS_FIELD + np.uint32(255 << _MANT)
    out = jnp.where(underflow, np.uint32(0), total - _BIAS_FIELD)
    out = jnp.where(overflow, np.uint32(255 << _MANT), out)
    zero = (x == 0) | (y == 0)
    out = jnp.where(zero, np.uint32(0), out) | sign
    return jax.lax.bitcast_convert_type(out, jnp.float32)


def lmul_matmul(a, b, mantissa_bits: int = 4):
    """`a @ b` with every scalar product done by L-Mul, accumulated in float32.

    Args:
      a: `[..., m, k]`; b: `[k, n]`.

    Returns:
      `[..., m, n]` float32. Materialises `[..., m, k, n]` products: an emulation for
      small shapes and error studies, not a fast kernel.
    """
    if jnp.ndim(b) != 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"lmul_matmul needs a [..., m, k] @ [k, n], got {a.shape} @ {b.shape}")
    return lmul(a[..., :, :, None], b, mantissa_bits).sum(axis=-2)


def fp8_mul(x, y, exponent_bits: int, mantissa_bits: int, *, round_output: bool):
    """Reference low-precision multiply: round the operands to ExMy (saturating), multiply
    exactly (float32 holds the product of two <= 11-bit significands), and optionally round
    the product to the same format."""
    xq = quantize_fp(jnp.asarray(x, jnp.float32), exponent_bits, mantissa_bits)
    yq = quantize_fp(jnp.asarray(y, jnp.float32), exponent_bits, mantissa_bits)
    p = xq * yq
    return quantize_fp(p, exponent_bits, mantissa_bits) if round_output else p


def mean_relative_error(approx, x, y):
    """Mean of `|approx - x y| / |x y|` over nonzero exact products (`x y` in float64)."""
    exact = np.asarray(x, np.float64) * np.asarray(y, np.float64)
    approx = np.asarray(approx, np.float64)
    nz = exact != 0
    return float(np.mean(np.abs(approx[nz] - exact[nz]) / np.abs(exact[nz])))


def lmul_attention(q, k, v, mantissa_bits: int = 3, *, causal: bool = False):
    """Softmax attention whose two matmuls (`q k^T` and `p v`) use L-Mul products.

    The paper replaces the attention's multiplications with L-Mul and reports it almost
    lossless. Softmax and accumulation stay in float32.

    Args:
      q, k, v: `[b, l, h, d]` (small shapes: products are materialised).
      mantissa_bits: L-Mul's k.
      causal: mask future keys.

    Returns:
      `[b, l, h, d]` float32.
    """
    if q.ndim != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"expected q, k, v: [b, l, h, d], got {q.shape}, {k.shape}, {v.shape}")
    scale = q.shape[-1] ** -0.5
    qh, kh, vh = (jnp.swapaxes(t, 1, 2) for t in (q, k, v))  # [b, h, l, d]
    logits = lmul(qh[..., :, None, :], kh[..., None, :, :], mantissa_bits).sum(-1) * scale
    if causal:
        length = q.shape[1]
        logits = jnp.where(jnp.tril(jnp.ones((length, length), bool)), logits, -jnp.inf)
    p = jax.nn.softmax(logits, axis=-1)
    out = lmul(p[..., :, :, None], vh[..., None, :, :], mantissa_bits).sum(-2)
    return jnp.swapaxes(out, 1, 2)
