"""Every Pallas kernel lowers to Triton for a CUDA GPU, checked on a machine without one.

`jax.export` lowers a function for a platform other than the host's. Pallas' Triton lowering
runs in Python at that point (kernel body -> Triton IR, serialized into a
`__gpu$xla.gpu.triton` custom call); only PTX compilation waits for a real GPU. So these
tests catch primitives the Triton backend cannot lower (value slicing, `jnp.remainder`...),
and a kernel falling back to the Mosaic GPU backend, long before a GPU run would.
"""

import re

import jax
import jax.numpy as jnp
import pytest
from jax import export

from lib.kernels.gla import gla_pallas
from lib.kernels.lif import lif_pallas
from lib.kernels.linear_recurrence import linear_recurrence_pallas
from lib.kernels.selective_scan import selective_scan_pallas

TRITON = "__gpu$xla.gpu.triton"
S = jax.ShapeDtypeStruct


def custom_calls_for_cuda(fn, *shapes):
    """Targets of the custom calls in `fn` lowered for CUDA (Triton calls allowed unserialized)."""
    exp = export.export(
        jax.jit(fn),
        platforms=["cuda"],
        disabled_checks=[export.DisabledSafetyCheck.custom_call(TRITON)],
    )(*shapes)
    return re.findall(r"custom_call @([\w$.]+)", exp.mlir_module())


def grad_of_sum(fn, argnums):
    return jax.grad(lambda *a: jnp.sum(fn(*a).astype(jnp.float32)), argnums)


def _sg(x):
    return 1.0 / (1.0 + 10.0 * jnp.abs(x)) ** 2


CASES = {
    "linear_recurrence": (
        lambda a, b: linear_recurrence_pallas(a, b, interpret=False),
        lambda L: (S((2, L, 128), jnp.float32), S((2, L, 128), jnp.float32)),
        (0, 1),
    ),
    "linear_recurrence_reverse_bf16": (
        lambda a, b: linear_recurrence_pallas(a, b, reverse=True, interpret=False),
        lambda L: (S((2, L, 128), jnp.bfloat16), S((2, L, 128), jnp.bfloat16)),
        (0, 1),
    ),
    "lif": (
        lambda c: lif_pallas(c, beta=0.9, surrogate_grad=_sg, interpret=False),
        lambda L: (S((2, L, 128), jnp.float32),),
        0,
    ),
    "selective_scan": (
        lambda u, dl, A, B, C, D, z: selective_scan_pallas(
            u, dl, A, B, C, D, z=z, delta_softplus=True, interpret=False
        ),
        lambda L: (
            S((2, L, 128), jnp.bfloat16),
            S((2, L, 128), jnp.bfloat16),
            S((128, 16), jnp.float32),
            S((2, L, 16), jnp.bfloat16),
            S((2, L, 16), jnp.bfloat16),
            S((128,), jnp.float32),
            S((2, L, 128), jnp.bfloat16),
        ),
        tuple(range(7)),
    ),
    "selective_scan_state_12": (  # zero-padded to 16 inside the wrapper
        lambda u, dl, A, B, C: selective_scan_pallas(u, dl, A, B, C, interpret=False),
        lambda L: (
            S((2, L, 64), jnp.float32),
            S((2, L, 64), jnp.float32),
            S((64, 12), jnp.float32),
            S((2, L, 12), jnp.float32),
            S((2, L, 12), jnp.float32),
        ),
        tuple(range(5)),
    ),
    "gla_dk48_dv24": (  # zero-padded to 64 and 32 inside the wrapper
        lambda q, k, v, g: gla_pallas(q, k, v, g, interpret=False),
        lambda L: (
            S((2, L, 2, 48), jnp.float32),
            S((2, L, 2, 48), jnp.float32),
            S((2, L, 2, 24), jnp.float32),
            S((2, L, 2, 48), jnp.float32),
        ),
        (0, 1, 2, 3),
    ),
    "gla": (
        lambda q, k, v, g: gla_pallas(q, k, v, g, interpret=False),
        lambda L: (*[S((2, L, 2, 64), jnp.bfloat16)] * 3, S((2, L, 2, 64), jnp.float32)),
        (0, 1, 2, 3),
    ),
    "gla_scalar_gate": (
        lambda q, k, v, g: gla_pallas(q, k, v, g, interpret=False),
        lambda L: (*[S((2, L, 2, 64), jnp.bfloat16)] * 3, S((2, L, 2), jnp.float32)),
        (0, 1, 2, 3),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_and_backward_lower_to_triton(name):
    fn, shapes, argnums = CASES[name]
    args = shapes(37)  # odd length: padding / partial-chunk paths
    fwd = custom_calls_for_cuda(fn, *args)
    assert fwd and set(fwd) == {TRITON}, fwd
    bwd = custom_calls_for_cuda(grad_of_sum(fn, argnums), *args)
    assert bwd.count(TRITON) >= 2 and set(bwd) == {TRITON}, bwd  # forward + backward kernel


def test_gpu_kernel_rejects_a_small_sub_chunk():
    q = jnp.zeros((1, 32, 1, 16))
    with pytest.raises(ValueError, match="sub_chunk"):
        gla_pallas(q, q, q, q, chunk_size=32, sub_chunk=8, interpret=False)
