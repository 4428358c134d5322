"""Microscaling (MX) block formats: OCP MX v1.0 (Rouhani et al. 2023), MXFP8/MXFP6/MXFP4/MXINT8.

A block of `block_size` (32) consecutive elements along `axis` shares one power-of-two scale
`X = 2**(floor(log2(max|v|)) - emax_elem)` (an E8M0 number, exponent clamped to [-127, 127]);
each element is `v / X` rounded to the element format, saturating. MXINT8 elements are 8-bit
two's complement codes with an implied scale 2**-6 (values in [-127/64, 127/64], the symmetric
range). Shapes: any `[..., n, ...]` with `n` (the size of `axis`) divisible by `block_size`.
"""

import functools
import math

import jax
import jax.numpy as jnp

from lib.ops.quant.formats import fp_max_value, quantize_fp

# name -> ("fp", exponent_bits, mantissa_bits) or ("int", bits)
MX_FORMATS = {
    "mxfp8_e4m3": ("fp", 4, 3),
    "mxfp8_e5m2": ("fp", 5, 2),
    "mxfp6_e3m2": ("fp", 3, 2),
    "mxfp6_e2m3": ("fp", 2, 3),
    "mxfp4": ("fp", 2, 1),
    "mxint8": ("int", 8),
}


def _format(fmt: str):
    if fmt not in MX_FORMATS:
        raise ValueError(f"unknown MX format {fmt!r}; expected one of {sorted(MX_FORMATS)}")
    return MX_FORMATS[fmt]


def element_emax(fmt: str) -> int:
    """Exponent of the largest power of two in the element format (E4M3: 8, E2M1: 2, INT8: 0)."""
    spec = _format(fmt)
    if spec[0] == "int":
        return 0
    return math.floor(math.log2(fp_max_value(spec[1], spec[2])))


def _quantize_elements(v, fmt):
    spec = _format(fmt)
    if spec[0] == "fp":
        return quantize_fp(v, spec[1], spec[2])
    step = 2.0**-6  # MXINT8: 1.6 fixed point
    return jnp.clip(jnp.round(v / step), -127, 127) * step


def _blocked(x, block_size, axis):
    if not (isinstance(block_size, int) and block_size >= 1):
        raise ValueError(f"block_size must be a positive int, got {block_size!r}")
    axis %= x.ndim
    n = x.shape[axis]
    if n % block_size:
        raise ValueError(
            f"axis {axis} of size {n} (shape {x.shape}) is not divisible by "
            f"block_size={block_size}; pad it first"
        )
    shape = x.shape[:axis] + (n // block_size, block_size) + x.shape[axis + 1 :]
    return x.reshape(shape), axis + 1


def mx_shared_exponent(x, fmt: str = "mxfp4", *, block_size: int = 32, axis: int = -1):
    """Integer shared exponent per block, shape `x.shape` with `axis` divided by block_size.

    `floor(log2(max|v|)) - element_emax(fmt)`, clamped to the E8M0 range [-127, 127]; an
    all-zero block gets -127.
    """
    xb, red = _blocked(jnp.asarray(x, jnp.float32), block_size, axis)
    amax = jnp.max(jnp.abs(xb), axis=red)
    _, ex = jnp.frexp(amax)  # amax = f * 2**ex, f in [0.5, 1)
    shared = jnp.where(amax > 0, ex - 1 - element_emax(fmt), -127)
    return jnp.clip(shared, -127, 127).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("fmt", "block_size", "axis"))
def mx_quantize(x, fmt: str = "mxfp4", *, block_size: int = 32, axis: int = -1):
    """Quantize-dequantize `x` in an MX format.

    Args:
      x: float array `[..., n, ...]`, `n = x.shape[axis]` divisible by `block_size`.
      fmt: one of `MX_FORMATS` ("mxfp8_e4m3", "mxfp8_e5m2", "mxfp6_e3m2", "mxfp6_e2m3",
        "mxfp4", "mxint8").
      block_size: elements per shared scale (32 in the OCP spec).
      axis: the axis split into blocks (the reduction axis of the matmul that consumes it).

    Returns:
      array like `x` (same dtype) with the values the MX encoding represents.
    """
    dtype = jnp.result_type(x)
    xf = jnp.asarray(x, jnp.float32)
    xb, red = _blocked(xf, block_size, axis)
    shared = mx_shared_exponent(xf, fmt, block_size=block_size, axis=axis)
    shared = jnp.expand_dims(shared, red)
    q = jnp.ldexp(_quantize_elements(jnp.ldexp(xb, -shared), fmt), shared)
    return q.reshape(xf.shape).astype(dtype)


def fake_mx_quantize(x, fmt: str = "mxfp4", *, block_size: int = 32, axis: int = -1):
    """`mx_quantize` forward with a straight-through (identity) gradient."""
    q = mx_quantize(jax.lax.stop_gradient(x), fmt, block_size=block_size, axis=axis)
    return x + jax.lax.stop_gradient(q - x)
