"""Shared pieces of the Pallas kernels."""

import jax
import jax.numpy as jnp
from jax.experimental.pallas import triton as pl_triton


def compiler_params(num_warps: int = 4):
    """Pallas compiler parameters that select the Triton backend on GPUs.

    Since JAX 0.9, `pl.pallas_call` on a GPU lowers to Mosaic GPU unless told otherwise; our
    kernels are written for Triton's model (one program per grid cell, refs loaded by slices,
    `fori_loop` over time), so they ask for Triton explicitly. On a TPU (Mosaic TPU lowering)
    no GPU parameters are passed. Under `interpret=True` the parameters are ignored.
    """
    if jax.default_backend() == "tpu":
        return None
    return pl_triton.CompilerParams(num_warps=num_warps)


def pow2_at_least(n: int, floor: int = 1) -> int:
    """Smallest power of two >= max(n, floor): Triton tensors must have power-of-two sizes
    (and `tl.dot` operands at least 16 per dimension), so kernels zero-pad feature axes to it."""
    m = max(int(n), int(floor))
    return 1 << (m - 1).bit_length()


def pad_axis(x, axis: int, size: int):
    """Zero-pad `x` along `axis` up to `size` (no-op when already that size)."""
    extra = size - x.shape[axis]
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return jnp.pad(x, widths)
