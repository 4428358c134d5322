"""Sparse Linen layers: N:M semi-structured dense, DSFormer's dense x sparse factorization
(Chand et al. 2023), the Delta activation layer for temporal sparsity (Yousefzadeh &
Sifalakis 2021), and magnitude pruning of parameter trees.
"""

import fnmatch
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.ops.sparse.pruning import (
    delta_layer,
    delta_sparsity_loss,
    delta_step,
    magnitude_mask,
    nm_sparsify_ste,
)


class NMSparseDense(nn.Module):
    """Dense layer whose kernel is N:M sparse along its input axis (straight-through mask).

    `dtype`, `param_dtype`: computation and parameter dtypes (`lib.nn.precision`); the mask
    is chosen on the `param_dtype` kernel."""

    features: int
    n: int = 2
    m: int = 4
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        shape, pd = (x.shape[-1], self.features), self.param_dtype
        kernel = self.param("kernel", nn.initializers.lecun_normal(), shape, pd)
        x = x if self.dtype is None else x.astype(self.dtype)
        y = x @ nm_sparsify_ste(kernel, self.n, self.m, axis=0).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), pd)
        return y if self.dtype is None else y.astype(self.dtype)


class DSFormerDense(nn.Module):
    """`x @ dense [d_in, inner] @ nm(sparse [inner, features])`: DSFormer's factorization.

    `dtype`, `param_dtype`: computation and parameter dtypes (`lib.nn.precision`)."""

    features: int
    inner: int
    n: int = 2
    m: int = 4
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        pd = self.param_dtype
        dense = self.param("dense", nn.initializers.lecun_normal(), (x.shape[-1], self.inner), pd)
        # the sparse factor keeps n/m of its entries: scale its init so outputs keep variance
        init = nn.initializers.variance_scaling(self.m / self.n, "fan_in", "truncated_normal")
        sparse = self.param("sparse", init, (self.inner, self.features), pd)
        x = x if self.dtype is None else x.astype(self.dtype)
        y = x @ dense.astype(x.dtype) @ nm_sparsify_ste(sparse, self.n, self.m).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,), pd)
        return y if self.dtype is None else y.astype(self.dtype)


class DeltaActivation(nn.Module):
    """Delta layer over time (axis 1): passes on the receiver's reconstruction and sows the
    transmitted deltas' sparsity loss as `intermediates/delta_sparsity_loss`.

    Attributes:
      threshold: changes with |delta| <= threshold are not transmitted.
      dtype: output dtype (None: the input's); the deltas and the reconstruction state are
        computed in float32. param_dtype: unused (no parameters), kept for the convention.
    """

    threshold: float = 0.1
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, ...] -> [b, l, ...]`, or `(y, state)`; state `[b, ...]` last reconstruction."""
        out_dtype = x_BxLxD.dtype if self.dtype is None else self.dtype
        x_BxLxD = x_BxLxD.astype(jnp.promote_types(x_BxLxD.dtype, jnp.float32))
        recon, delta, final = delta_layer(
            x_BxLxD, self.threshold, initial_state=state, return_final_state=True
        )
        recon = recon.astype(out_dtype)
        self.sow("intermediates", "delta_sparsity_loss", delta_sparsity_loss(x_BxLxD))
        self.sow("intermediates", "delta_nonzero_fraction", jnp.mean(delta != 0))
        return (recon, final) if return_state else recon

    def step(self, state, x_BxD):
        """One time step: `(state, x_t) -> (state, y_t)`."""
        out_dtype = x_BxD.dtype if self.dtype is None else self.dtype
        x_BxD = x_BxD.astype(jnp.promote_types(x_BxD.dtype, jnp.float32))
        state, (_, recon) = delta_step(state, x_BxD, self.threshold)
        return state, recon.astype(out_dtype)


def magnitude_prune(params, sparsity: float, pattern: str = "*kernel"):
    """Zero the smallest-|w| fraction of every matching kernel; returns `(params, masks)`."""
    masks = {}

    def visit(path, leaf):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        if jnp.ndim(leaf) >= 2 and fnmatch.fnmatchcase(name, pattern):
            mask = magnitude_mask(leaf, sparsity)
            masks[name] = mask
            return leaf * mask
        return leaf

    return jax.tree_util.tree_map_with_path(visit, params), masks
