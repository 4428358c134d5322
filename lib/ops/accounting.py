"""Cost accounting for efficient models: parameter bits, MACs and bit-operations (BOPs, as in
the quantization survey of Gholami et al. 2021), memory and activation sparsity.

`account(apply_fn, params, *inputs, ...)` returns one flat dict of Python numbers that a
train loop can log. MACs are counted from the jaxpr (every `dot_general` and
`conv_general_dilated`, through jit / custom_vjp / remat, times the length of each `scan`;
a `while_loop` body counts once, a `cond` counts its most expensive branch).
"""

import fnmatch
import math

import jax
import jax.numpy as jnp
from jax.extend import core as jcore


def _dot_macs(eqn) -> int:
    (lc, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval.shape
    out = eqn.outvars[0].aval.shape
    return math.prod(out) * math.prod(lhs[i] for i in lc)


def _conv_macs(eqn) -> int:
    rhs = eqn.invars[1].aval.shape
    out = eqn.outvars[0].aval.shape
    out_feat_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    return math.prod(out) * math.prod(rhs) // rhs[out_feat_dim]


def _sub_jaxprs(value):
    if isinstance(value, jcore.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jcore.Jaxpr):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _sub_jaxprs(v)


def _jaxpr_macs(jaxpr) -> int:
    total = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            total += _dot_macs(eqn)
        elif name == "conv_general_dilated":
            total += _conv_macs(eqn)
        elif name == "cond":
            total += max(_jaxpr_macs(b.jaxpr) for b in eqn.params["branches"])
        else:
            mult = eqn.params.get("length", 1) if name == "scan" else 1
            sub = [j for k, v in eqn.params.items() if k != "branches" for j in _sub_jaxprs(v)]
            if name == "custom_vjp_call" or name == "custom_jvp_call":
                sub = sub[:1]  # the primal function only (not its derivative rules)
            total += mult * sum(_jaxpr_macs(j) for j in sub)
    return total


def count_macs(fn, *args, **kwargs) -> int:
    """Multiply-accumulates of one call `fn(*args, **kwargs)` (matmuls and convolutions)."""
    closed = jax.make_jaxpr(lambda *a: fn(*a, **kwargs))(*args)
    return _jaxpr_macs(closed.jaxpr)


def _path_str(path) -> str:
    parts = []
    for p in path:
        parts.append(str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p)))))
    return "/".join(parts)


def param_bits(params, bits=None) -> float:
    """Total storage bits of `params`.

    Args:
      bits: None (each leaf's dtype width), a number (every leaf), or a dict
        `{fnmatch pattern on the "/"-joined leaf path: bits}`; the first matching pattern
        wins, unmatched leaves use their dtype width.
    """
    total = 0.0
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        width = jnp.dtype(leaf.dtype).itemsize * 8
        if isinstance(bits, int | float):
            width = bits
        elif isinstance(bits, dict):
            name = _path_str(path)
            for pattern, b in bits.items():
                if fnmatch.fnmatchcase(name, pattern):
                    width = b
                    break
        total += float(leaf.size) * width
    return total


def activation_sparsity(activations) -> float:
    """Fraction of exact zeros over all leaves of a pytree of arrays (size-weighted)."""
    leaves = [a for a in jax.tree.leaves(activations) if hasattr(a, "size") and a.size]
    if not leaves:
        return 0.0
    zeros = sum(float(jnp.sum(a == 0)) for a in leaves)
    return zeros / sum(a.size for a in leaves)


def account(
    apply_fn, params, *inputs, weight_bits=None, act_bits: float = 32, activations=None
) -> dict:
    """Costs of one forward pass `apply_fn(params, *inputs)`.

    Args:
      apply_fn: e.g. `model.apply`.
      params: its parameters.
      *inputs: example inputs (a batch; MACs scale with it).
      weight_bits: as `param_bits`'s `bits` (None: dtype widths); also the weight width in
        BOPs (a dict's or None's width is taken as the parameter-weighted mean).
      act_bits: activation width for BOPs and activation memory.
      activations: optional pytree of intermediate activations (e.g. Flax's
        `capture_intermediates`) for the sparsity figure.

    Returns:
      dict with `params` (count), `param_bits`, `param_bytes`, `macs`, `bops`,
      `activation_bytes` (XLA's temporary buffers of the compiled forward, scaled to
      `act_bits`; 0 if the backend does not report it) and `activation_sparsity`.
    """
    n_params = sum(int(leaf.size) for leaf in jax.tree.leaves(params))
    pbits = param_bits(params, weight_bits)
    mean_wbits = pbits / max(n_params, 1)
    macs = count_macs(apply_fn, params, *inputs)
    act_bytes = 0.0
    try:
        mem = jax.jit(apply_fn).lower(params, *inputs).compile().memory_analysis()
        act_bytes = float(mem.temp_size_in_bytes) * act_bits / 32.0
    except Exception:  # noqa: BLE001  (some backends do not report memory)
        pass
    return {
        "params": n_params,
        "param_bits": pbits,
        "param_bytes": pbits / 8.0,
        "macs": macs,
        "bops": float(macs) * mean_wbits * act_bits,
        "activation_bytes": act_bytes,
        "activation_sparsity": activation_sparsity(activations) if activations is not None else 0.0,
    }
