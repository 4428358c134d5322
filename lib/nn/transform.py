"""One-call transforms of any Linen model's Dense layers: fake quantization (QAT/PTQ; survey:
Gholami et al. 2021) or low-rank factorization (SVD init; Maestro / TRP style), by name pattern.

Both work with `nn.intercept_methods`: every `nn.Dense.__call__` and `nn.DenseGeneral.__call__`
(e.g. attention's q/k/v/o projections) whose module path matches the pattern is computed by us
instead of Flax, reading the layer's own parameters, so the model's code is untouched. Paths
are the Flax scope names joined by "/" (e.g. "Block_0/mlp/Dense_1") and matched with
`fnmatch.fnmatchcase` ("*" matches everything, "*mlp*" the MLPs).

A DenseGeneral kernel `[*in_axes, *features]` is treated as the matrix
`[prod(in_axes), prod(features)]`: per-channel scales (`axis=-1`) are one per output feature
tuple (e.g. per (head, head_dim) of a q projection), and the low-rank factors are
`u: [*in_axes, r]`, `v: [r, *features]`. DenseGeneral with `batch_dims` is not supported.

    qmodel = quantize_dense(model, weight=QuantSpec("int", bits=4, axis=-1))
    params = qmodel.init(rng, x)        # same params as model.init (plus LSQ steps if any)
    y = qmodel.apply(params, x)         # Dense kernels (and inputs) fake-quantized

    lr = lowrank_dense(model, params, x, energy=0.95)   # SVD-initialized factors
    y = lr.apply(lr.params, x)          # x @ u @ v + b in the matched layers
"""

import fnmatch
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.quant.layers import QuantSpec, quantized_dense_apply
from lib.ops.lowrank.factor import rank_for_energy, svd_factorize


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


DENSE_TYPES = (nn.Dense, nn.DenseGeneral)


def _is_target(context, pattern: str) -> bool:
    return (
        context.method_name == "__call__"
        and isinstance(context.module, DENSE_TYPES)
        and fnmatch.fnmatchcase(module_path(context.module), pattern)
    )


def _as_tuple(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _layout(mod, x):
    """`(in_axes, features)` of a Dense/DenseGeneral applied to `x` (axes normalised)."""
    if isinstance(mod, nn.Dense):
        return (x.ndim - 1,), (mod.features,)
    if _as_tuple(mod.batch_dims):
        raise ValueError(
            f"DenseGeneral {module_path(mod)!r} has batch_dims={mod.batch_dims}: not supported"
        )
    # as Flax does: the kernel's input axes are the contracted axes in increasing order
    axes = tuple(sorted(a % x.ndim for a in _as_tuple(mod.axis)))
    return axes, _as_tuple(mod.features)


def _flat_input(x, in_axes):
    """`x` with the contracted axes moved last (in kernel order) and merged: `[..., prod(in)]`."""
    n = len(in_axes)
    x = jnp.moveaxis(x, in_axes, tuple(range(x.ndim - n, x.ndim)))
    return x.reshape(x.shape[: x.ndim - n] + (-1,))


def _unflat_output(y, features):
    return y.reshape(y.shape[:-1] + tuple(features))


def _as_matrix(kernel, n_in: int):
    """A Dense/DenseGeneral kernel `[*in, *features]` as `[prod(in), prod(features)]`."""
    return kernel.reshape(math.prod(kernel.shape[:n_in]), -1)


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
    """Fake-quantize the kernels (and optionally inputs) of matching `nn.Dense` and
    `nn.DenseGeneral` layers.

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
        in_axes, features = _layout(mod, x)
        y = quantized_dense_apply(
            mod,
            _flat_input(x, in_axes),
            _as_matrix(kernel, len(in_axes)),
            None if bias is None else bias.reshape(-1),
            weight,
            act,
        )
        y = y if mod.dtype is None else y.astype(mod.dtype)  # the layer's computation dtype
        return _unflat_output(y, features)

    return Transformed(
        _with_interceptor(model.init, interceptor), _with_interceptor(model.apply, interceptor)
    )


def matching_dense_paths(model: nn.Module, params, *args, pattern: str = "*", **kwargs):
    """Paths of the `nn.Dense` / `nn.DenseGeneral` layers a pattern selects (found by tracing
    one apply), in call order."""
    return list(_matching_layouts(model, params, *args, pattern=pattern, **kwargs))


def _matching_layouts(model, params, *args, pattern="*", **kwargs) -> dict:
    """`{path: (number of input axes, number of feature axes) of its kernel}` of the matching
    layers."""
    found = {}

    def interceptor(next_fun, a, kw, context):
        if _is_target(context, pattern):
            in_axes, features = _layout(context.module, a[0])
            found.setdefault(module_path(context.module), (len(in_axes), len(features)))
        return next_fun(*a, **kw)

    with nn.intercept_methods(interceptor):
        jax.eval_shape(lambda p: model.apply(p, *args, **kwargs), params)
    return found


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
    """Factorize matching `nn.Dense` / `nn.DenseGeneral` kernels as `u @ v` (SVD init) and
    return the new model.

    Args:
      model, params: a Linen model and its (trained) params `{"params": ...}`.
      *args, **kwargs: example inputs (shapes only) to find the Dense layers.
      pattern: fnmatch pattern on the Dense module's path.
      rank: the rank of every factorized layer (clipped to min(d_in, d_out)), or
      energy: keep this fraction of each kernel's squared singular values instead.

    Kernels stacked by `nn.scan` (`[layers, d_in, d_out]`) are factorized layer by layer with
    one rank (the largest any layer needs when `energy` is given). A DenseGeneral kernel
    `[*in_axes, *features]` is factorized as the matrix `[prod(in_axes), prod(features)]`.

    Returns:
      `LowRankModel(apply, params, ranks)`: in `params` each matched layer holds
      `u: [*in_axes, r]`, `v: [r, *features]` (`[d_in, r]`, `[r, d_out]` for a Dense; and its
      `bias`) instead of `kernel`; train them like any params.
    """
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank= or energy=")
    layouts = _matching_layouts(model, params, *args, pattern=pattern, **kwargs)
    new = jax.tree.map(lambda t: t, params)  # a copy of the nesting
    new = _unfreeze(new)
    ranks = {}
    for path, (n_in, n_out) in layouts.items():
        layer = _get(new["params"], path)
        kernel = layer.pop("kernel")
        n_lead = kernel.ndim - n_in - n_out  # nn.scan stacks layers in front
        lead, in_shape = kernel.shape[:n_lead], kernel.shape[n_lead : kernel.ndim - n_out]
        out_shape = kernel.shape[kernel.ndim - n_out :]
        stacked = kernel.reshape((-1, math.prod(in_shape), math.prod(out_shape)))
        if energy is not None:
            svals = jnp.linalg.svd(stacked, compute_uv=False)
            r = max(rank_for_energy(s, energy) for s in svals)
        else:
            r = min(rank, *stacked.shape[1:])
        u, v = jax.vmap(lambda k, r=r: svd_factorize(k, r))(stacked)
        layer["u"] = u.reshape(lead + in_shape + (r,))
        layer["v"] = v.reshape(lead + (r,) + out_shape)
        ranks[path] = r

    def interceptor(next_fun, a, kw, context):
        if not _is_target(context, pattern) or not context.module.has_variable("params", "u"):
            return next_fun(*a, **kw)
        mod = context.module
        u, v = mod.get_variable("params", "u"), mod.get_variable("params", "v")
        (x,) = a
        in_axes, features = _layout(mod, x)
        u2 = u.reshape(-1, u.shape[-1]).astype(x.dtype)
        v2 = v.reshape(v.shape[0], -1).astype(x.dtype)
        y = _unflat_output((_flat_input(x, in_axes) @ u2) @ v2, features)
        y = y + mod.get_variable("params", "bias") if mod.use_bias else y
        return y if mod.dtype is None else y.astype(mod.dtype)

    return LowRankModel(_with_interceptor(model.apply, interceptor), new, ranks)


def _unfreeze(tree):
    if isinstance(tree, dict) or hasattr(tree, "items"):
        return {k: _unfreeze(v) for k, v in tree.items()}
    return tree
