"""Real low-precision matmuls (int8 x int8 -> int32; FP8 with jnp.float8 dtypes, fast on
Hopper) and their fake-quant float twins for CPUs (survey: Gholami et al. 2021; FP8 vs INT8).

Scales: activations per row (token) `[..., m, 1]`, weights per output column `[1, n]`, so a
product dequantizes with one outer-product multiply: `out = (xq @ wq) * sx * sw`.
"""

import jax
import jax.numpy as jnp

from lib.ops.quant.formats import dequantize_int, fp_max_value, int_scale, quantize_fp, quantize_int

FP8_DTYPES = {
    "e4m3": (jnp.float8_e4m3fn, 4, 3),
    "e5m2": (jnp.float8_e5m2, 5, 2),
}


def _check_mk_kn(a, b):
    if jnp.ndim(b) != 2 or jnp.ndim(a) < 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"expected a: [..., m, k] and b: [k, n], got {a.shape} and {b.shape}")


def int8_dot(a_q, b_q):
    """Integer `a_q @ b_q` with int32 accumulation (`lax.dot_general`).

    Args:
      a_q: int8 `[..., m, k]`; b_q: int8 `[k, n]`.

    Returns:
      int32 `[..., m, n]`, exact.
    """
    _check_mk_kn(a_q, b_q)
    if a_q.dtype != jnp.int8 or b_q.dtype != jnp.int8:
        raise TypeError(f"int8_dot needs int8 operands, got {a_q.dtype} and {b_q.dtype}")
    dims = (((a_q.ndim - 1,), (0,)), ((), ()))
    return jax.lax.dot_general(a_q, b_q, dims, preferred_element_type=jnp.int32)


def _int8_scales(x, w):
    sx, _ = int_scale(x, 8, axis=tuple(range(x.ndim - 1)), narrow_range=True)  # per row
    sw, _ = int_scale(w, 8, axis=-1, narrow_range=True)  # per output column
    return sx, sw


def int8_matmul(x, w):
    """`x @ w` through int8 codes (dynamic per-row / per-column symmetric scales), int32 acc.

    Args:
      x: float `[..., m, k]`; w: float `[k, n]`.

    Returns:
      float32 `[..., m, n]`.
    """
    _check_mk_kn(x, w)
    sx, sw = _int8_scales(x, w)
    xq = quantize_int(x, 8, scale=sx, narrow_range=True)
    wq = quantize_int(w, 8, scale=sw, narrow_range=True)
    return int8_dot(xq, wq).astype(jnp.float32) * sx * sw


def int8_matmul_fake(x, w):
    """Float twin of `int8_matmul`: fake-quantized operands multiplied in float32."""
    _check_mk_kn(x, w)
    sx, sw = _int8_scales(x, w)
    xf = dequantize_int(quantize_int(x, 8, scale=sx, narrow_range=True), scale=sx)
    wf = dequantize_int(quantize_int(w, 8, scale=sw, narrow_range=True), scale=sw)
    return xf @ wf


def _fp8_scales(x, w, fmt):
    _, e, m = FP8_DTYPES[fmt]
    top = fp_max_value(e, m)
    sx = jnp.maximum(jnp.max(jnp.abs(x), axis=-1, keepdims=True), 1e-30) / top
    sw = jnp.maximum(jnp.max(jnp.abs(w), axis=0, keepdims=True), 1e-30) / top
    return sx, sw


def fp8_matmul(x, w, fmt: str = "e4m3"):
    """`x @ w` with operands cast to a `jnp.float8_*` dtype and float32 accumulation.

    Per-row / per-column scales map each max |value| onto the format's max; values are
    saturated before the cast (a plain cast would give NaN/inf past the max).

    Args:
      x: float `[..., m, k]`; w: float `[k, n]`; fmt: "e4m3" or "e5m2".

    Returns:
      float32 `[..., m, n]`.
    """
    if fmt not in FP8_DTYPES:
        raise ValueError(f"unknown fmt={fmt!r}; expected one of {sorted(FP8_DTYPES)}")
    _check_mk_kn(x, w)
    dtype, e, m = FP8_DTYPES[fmt]
    top = fp_max_value(e, m)
    sx, sw = _fp8_scales(x, w, fmt)
    x8 = jnp.clip(x / sx, -top, top).astype(dtype)
    w8 = jnp.clip(w / sw, -top, top).astype(dtype)
    dims = (((x.ndim - 1,), (0,)), ((), ()))
    out = jax.lax.dot_general(x8, w8, dims, preferred_element_type=jnp.float32)
    return out * sx * sw


def fp8_matmul_fake(x, w, fmt: str = "e4m3"):
    """Float twin of `fp8_matmul`: `quantize_fp` on the scaled operands, float32 matmul."""
    if fmt not in FP8_DTYPES:
        raise ValueError(f"unknown fmt={fmt!r}; expected one of {sorted(FP8_DTYPES)}")
    _check_mk_kn(x, w)
    _, e, m = FP8_DTYPES[fmt]
    sx, sw = _fp8_scales(x, w, fmt)
    xq = quantize_fp(x / sx, e, m)
    wq = quantize_fp(w / sw, e, m)
    return (xq @ wq) * sx * sw
