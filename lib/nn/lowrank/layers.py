"""Low-rank Linen layers: factorized dense with SVD init and Maestro's ordered dropout
(Horváth et al. 2023), plus Trained Rank Pruning's parameter-tree helpers (Xu et al. 2019).

`LowRankDense` computes `x @ u[:, :r] @ v[:r] + b`; with `ordered_dropout=True` and
`deterministic=False` it samples `r` uniformly per call from the `"dropout"` rng, which trains
the components in order of importance (the first k span the best rank-k map).
"""

import fnmatch
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.ops.lowrank.factor import (
    importance_order,
    lowrank_apply,
    nuclear_norm_subgradient,
    reorder,
    sample_rank,
    svd_factorize,
    trp_project,
)


class LowRankDense(nn.Module):
    """Factorized dense layer `x @ u @ v + b`.

    Attributes:
      features: output width.
      rank: R, the number of components (`u: [d_in, R]`, `v: [R, features]`).
      use_bias: add a bias.
      ordered_dropout: sample the used rank per call when not deterministic (Maestro).
      min_rank: smallest sampled rank.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`; None: the
        input's dtype, as before).
    """

    features: int
    rank: int
    use_bias: bool = True
    ordered_dropout: bool = False
    min_rank: int = 1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, rank=None, deterministic: bool = True):
        """`x: [..., d_in] -> [..., features]`; `rank` truncates to the first components."""
        d_in = x.shape[-1]
        pd = self.param_dtype
        u = self.param("u", nn.initializers.lecun_normal(), (d_in, self.rank), pd)
        v = self.param("v", nn.initializers.lecun_normal(), (self.rank, self.features), pd)
        if rank is None and self.ordered_dropout and not deterministic:
            rank = sample_rank(self.make_rng("dropout"), self.rank, min_rank=self.min_rank)
        x = x if self.dtype is None else x.astype(self.dtype)
        y = lowrank_apply(x, u.astype(x.dtype), v.astype(x.dtype), rank)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), pd)
            y = y + bias.astype(x.dtype)
        return y


def lowrank_params_from_dense(dense_params, rank: int):
    """`{"u", "v"[, "bias"]}` for `LowRankDense` from an `nn.Dense`'s `{"kernel"[, "bias"]}`."""
    u, v = svd_factorize(dense_params["kernel"], rank)
    out = {"u": u, "v": v}
    if "bias" in dense_params:
        out["bias"] = dense_params["bias"]
    return out


def maestro_reorder(layer_params):
    """Sort a `LowRankDense`'s components by importance `||u_i|| ||v_i||` (output unchanged)."""
    u, v = reorder(layer_params["u"], layer_params["v"], importance_order(*_uv(layer_params)))
    return {**layer_params, "u": u, "v": v}


def maestro_truncate(layer_params, rank: int):
    """Keep the first `rank` components (after `maestro_reorder`: the most important)."""
    return {**layer_params, "u": layer_params["u"][:, :rank], "v": layer_params["v"][:rank]}


def _uv(p):
    return p["u"], p["v"]


def _map_kernels(fn, params, pattern, other=lambda leaf: leaf):
    """Apply `fn` to 2-D leaves whose "/"-joined path matches `pattern`, `other` elsewhere."""

    def visit(path, leaf):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        if jnp.ndim(leaf) == 2 and fnmatch.fnmatchcase(name, pattern):
            return fn(leaf)
        return other(leaf)

    return jax.tree_util.tree_map_with_path(visit, params)


def trp_project_params(params, energy: float = 0.99, pattern: str = "*kernel"):
    """TRP's periodic step: project every matching 2-D kernel onto its energy-truncated rank."""
    return _map_kernels(lambda w: trp_project(w, energy), params, pattern)


def nuclear_norm_grads(params, pattern: str = "*kernel"):
    """Subgradients `U V^T` of the nuclear norm for matching 2-D kernels (zeros elsewhere);
    add `lam *` this tree to the loss gradients (TRP's regulariser)."""
    return _map_kernels(nuclear_norm_subgradient, params, pattern, jnp.zeros_like)
