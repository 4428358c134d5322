"""Mixed precision for `lib.nn`: the `dtype` / `param_dtype` convention and its helpers
(Micikevicius et al. 2018, "Mixed Precision Training", with bfloat16 instead of float16).

Every module of `lib.nn` has two fields, as in Flax Linen's own layers (`nn.Dense`):

- `dtype`: the computation dtype. None (the default) keeps what the module did before it had
  the field: computing in the dtype its inputs and parameters promote to (float32 for float32
  inputs). `jnp.bfloat16` runs the projections (matmuls, convolutions) in bfloat16 and returns
  bfloat16 activations.
- `param_dtype`: the dtype parameters are created in (float32 by default). The optimizer
  state follows the parameters, so with `dtype=jnp.bfloat16, param_dtype=jnp.float32` the
  gradients, updates and Adam moments all stay float32.

Whatever `dtype`, numerically delicate parts accumulate in float32: recurrent states and
scans (their inputs are cast to float32 before the op and its output back to `dtype`), log-
space gates and decays, softmaxes and norms (`lib.ops.attention` and `RMSNorm` compute in
float32), and states returned by `init_state` / `step` are float32 (complex64 for complex
SSMs). A language model's logits are returned in float32.

`compute_dtype(name)` turns the config switch `config.train.compute_dtype` ("float32" or
"bfloat16") into the `dtype` a project's `build()` passes to its model.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = Any

COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str | None) -> Dtype:
    """The computation dtype named by `config.train.compute_dtype`.

    Args:
      name: "float32" or "bfloat16" (None: "float32").
    Returns:
      `jnp.float32` or `jnp.bfloat16`, to pass as a module's `dtype`.
    """
    name = "float32" if name is None else str(name)
    if name not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {sorted(COMPUTE_DTYPES)}, got {name!r}")
    return COMPUTE_DTYPES[name]


def dense(module: nn.Module, features, **kwargs) -> nn.Module:
    """`nn.Dense(features, **kwargs)` in `module`'s `dtype` and `param_dtype`."""
    return nn.Dense(features, dtype=module.dtype, param_dtype=module.param_dtype, **kwargs)


def param(module: nn.Module, name: str, init: Callable, shape) -> jax.Array:
    """`module.param(name, init, shape)` created in `module.param_dtype`.

    `init(key, shape)` may ignore dtypes (many of ours do): its value is cast afterwards.
    """
    return module.param(name, lambda key, s: jnp.asarray(init(key, s), module.param_dtype), shape)


def precision_kwargs(module: nn.Module) -> dict:
    """`{"dtype": ..., "param_dtype": ...}` of `module`, to pass on to its submodules."""
    return {"dtype": module.dtype, "param_dtype": module.param_dtype}


def cast(x, dtype: Dtype):
    """`x` in `dtype` (unchanged when `dtype` is None or `x` is not a float array)."""
    if dtype is None or not jnp.issubdtype(jnp.result_type(x), jnp.floating):
        return x
    return jnp.asarray(x).astype(dtype)


def to_float32(*xs):
    """Real float arrays promoted to at least float32 (others unchanged): the inputs of a
    recurrence, so that it accumulates in float32 whatever the computation dtype."""

    def up(x):
        if x is None or not jnp.issubdtype(jnp.result_type(x), jnp.floating):
            return x
        return x.astype(jnp.promote_types(x.dtype, jnp.float32))

    out = tuple(up(x) for x in xs)
    return out[0] if len(xs) == 1 else out


def result_dtype(module: nn.Module, x) -> Dtype:
    """The dtype `module` returns for input `x`: its `dtype`, else `x`'s."""
    return module.dtype if module.dtype is not None else jnp.result_type(x)


def state_dtype(dtype: Dtype) -> Dtype:
    """The dtype of a float state for activations in `dtype`: float32 or wider."""
    return jnp.promote_types(dtype, jnp.float32)
