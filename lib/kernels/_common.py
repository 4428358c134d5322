"""Shared pieces of the Pallas kernels."""

import jax
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
