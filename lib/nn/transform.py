"""One-call transforms of any Linen model's Dense layers: fake quantization (QAT/PTQ; survey:
Gholami et al. 2021) or low-rank factorization (SVD init; Maestro / TRP style), by name pattern.

Both work with `nn.intercept_methods`: every `nn.Dense.__call__` whose module path matches the
pattern is computed by us instead of Flax, reading the Dense's own parameters, so the model's
code is untouched. Paths are the Flax scope names joined by "/" (e.g. "Block_0/mlp/Dense_1")
and matched with `fnmatch.fnmatchcase` ("*" matches everything, "*mlp*" the MLPs).

    qmodel = quantize_dense(model, weight=QuantSpec("int", bits=4, axis=-1))
    params = qmodel.init(rng, x)        # same params as model.init (plus LSQ steps if any)
    y = qmodel.apply(params, x)         # Dense kernels (and inputs) fake-quantized

    lr = lowrank_dense(model, params, x, energy=0.95)   # SVD-initialized factors
    y = lr.apply(lr.params, x)          # x @ u @ v + b in the matched layers
"""

import fnmatch
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.quant import QuantSpec, quantized_dense_apply
from lib.ops.lowrank import rank_for_energy, svd_factorize


class Transformed(NamedTuple):
    """`init(rng, *args, **kw)` and `apply(params, *args, **kw)` of the transformed model."""

    init: Callable[..., Any]
    apply: Callable[..., Any]


class LowRankModel(NamedTuple):
    """A low-rank-factorized model: its `apply`, its new `params`, and each layer's rank."""

    apply: Callable[..., Any]
    params: Any
    ranks: dict


def module_path(module) -> str:
    """The "/"-joined scope path of a bound Linen module."""
    return "/".join(str(p) for p in module.scope.path)


def _is_target(context, pattern: str) -> bool:
    return (
        context.method_name == "__call__"
        and isinstance(context.module, nn.Dense)
        and fnmatch.fnmatchcase(module_path(context.module), pattern)
    )


def _with_interceptor(fn, interceptor):
    def wrapped(*args, **kwargs):
        with nn.intercept_methods(interceptor):
            return fn(*args, **kwargs)

    return wrapped


def _dense_params(mod):
    kernel = mod.get_variable("params", "kernel")
    bias = mod.get_variable("params", "bias") if mod.use_bias else None
    return kernel, bias


def quantize_dense(
    model: nn.Module, weight: QuantSpec, act: QuantSpec | None = None, pattern: str = "*"
) -> Transformed:
    """Fake-quantize the kernels (and optionally inputs) of matching `nn.Dense` layers.

    Args:
      model: any Linen module.
      weight: kernel format (e.g. `QuantSpec("int", bits=4, axis=-1)` per output channel,
        `QuantSpec("fp", exponent_bits=2, mantissa_bits=1)`, `QuantSpec("binary")`).
      act: input-activation format, or None.
      pattern: fnmatch pattern on the Dense module's path.

    Returns:
      `Transformed(init, apply)`; gradients reach the float kernels straight-through (QAT).
    """

    def interceptor(next_fun, args, kwargs, context):
        if not _is_target(context, pattern):
            return next_fun(*args, **kwargs)
        mod = context.module
        if not mod.has_variable("params", "kernel"):
            next_fun(*args, **kwargs)  # initialisation: let Dense create its params
        kernel, bias = _dense_params(mod)
        (x,) = args
        return quantized_dense_apply(mod, x, kernel, bias, weight, act)

    return Transformed(
        _with_interceptor(model.init, interceptor), _with_interceptor(model.apply, interceptor)
    )


def matching_dense_paths(model: nn.Module, params, *args, pattern: str = "*", **kwargs):
    """Paths of the `nn.Dense` layers a pattern selects (found by tracing one apply)."""
    found = []

    def interceptor(next_fun, a, kw, context):
        if _is_target(context, pattern):
            found.append(module_path(context.module))
        return next_fun(*a, **kw)

    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda p: model.apply(p, *args, **kwargs), params)
    return list(dict.fromkeys(found))


def _get(tree, path):
    for k in path.split("/") if path else []:
        tree = tree[k]
    return tree


def lowrank_dense(
    model: nn.Module,
    params,
    *args,
    pattern: str = "*",
    rank: int | None = None,
    energy: float | None = None,
    **kwargs,
) -> LowRankModel:
    """Factorize matching `nn.Dense` kernels as `u @ v` (SVD init) and return the new model.

    Args:
      model, params: a Linen model and its (trained) params `{"params": ...}`.
      *args, **kwargs: example inputs (shapes only) to find the Dense layers.
      pattern: fnmatch pattern on the Dense module's path.
      rank: the rank of every factorized layer (clipped to min(d_in, d_out)), or
      energy: keep this fraction of each kernel's squared singular values instead.

    Kernels stacked by `nn.scan` (`[layers, d_in, d_out]`) are factorized layer by layer with
    one rank (the largest any layer needs when `energy` is given).

    Returns:
      `LowRankModel(apply, params, ranks)`: in `params` each matched Dense holds `u: [d_in, r]`,
      `v: [r, d_out]` (and its `bias`) instead of `kernel`; train them like any params.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    paths = matching_dense_paths(model, params, *args, pattern=pattern, **kwargs)
    new = jax.tree.map(lambda t: t, params)  # a copy of the nesting
    new = _unfreeze(new)
    ranks = {}
    for path in paths:
        layer = _get(new["params"], path)
        kernel = layer.pop("kernel")
        stacked = kernel.reshape((-1,) + kernel.shape[-2:])  # nn.scan stacks layers in front
        if energy is not None:
            svals = jnp.linalg.svd(stacked, compute_uv=False)
            r = max(rank_for_energy(s, energy) for s in svals)
        else:
            r = min(rank, *kernel.shape[-2:])
        u, v = jax.vmap(lambda k, r=r: svd_factorize(k, r))(stacked)
        layer["u"] = u.reshape(kernel.shape[:-1] + (r,))
        layer["v"] = v.reshape(kernel.shape[:-2] + (r, kernel.shape[-1]))
        ranks[path] = r

    def interceptor(next_fun, a, kw, context):
        if not _is_target(context, pattern) or not context.module.has_variable("params", "u"):
            return next_fun(*a, **kw)
        mod = context.module
        u, v = mod.get_variable("params", "u"), mod.get_variable("params", "v")
        (x,) = a
        y = (x @ u.astype(x.dtype)) @ v.astype(x.dtype)
        return y + mod.get_variable("params", "bias") if mod.use_bias else y

    return LowRankModel(_with_interceptor(model.apply, interceptor), new, ranks)


def _unfreeze(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return tree
