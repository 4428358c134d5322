"""Sparse Linen layers: N:M semi-structured dense, DSFormer's dense x sparse factorization
(Chand et al. 2023), the Delta activation layer for temporal sparsity (Yousefzadeh &
Sifalakis 2021), and magnitude pruning of parameter trees.
"""

import fnmatch

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
    """Dense layer whose kernel is N:M sparse along its input axis (straight-through mask)."""

    features: int
    n: int = 2
    m: int = 4
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
        y = x @ nm_sparsify_ste(kernel, self.n, self.m, axis=0).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class DSFormerDense(nn.Module):
    """`x @ dense [d_in, inner] @ nm(sparse [inner, features])`: DSFormer's factorization."""

    features: int
    inner: int
    n: int = 2
    m: int = 4
    use_bias: bool = True

    @nn.compact
    def __call__(self, x):
        dense = self.param("dense", nn.initializers.lecun_normal(), (x.shape[-1], self.inner))
        # the sparse factor keeps n/m of its entries: scale its init so outputs keep variance
        init = nn.initializers.variance_scaling(self.m / self.n, "fan_in", "truncated_normal")
        sparse = self.param("sparse", init, (self.inner, self.features))
        y = x @ dense.astype(x.dtype) @ nm_sparsify_ste(sparse, self.n, self.m).astype(x.dtype)
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (self.features,))
        return y


class DeltaActivation(nn.Module):
    """Delta layer over time (axis 1): passes on the receiver's reconstruction and sows the
    transmitted deltas' sparsity loss as `intermediates/delta_sparsity_loss`.

    Attributes:
      threshold: changes with |delta| <= threshold are not transmitted.
    """

    threshold: float = 0.1

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, ...] -> [b, l, ...]`, or `(y, state)`; state `[b, ...]` last reconstruction."""
        recon, delta, final = delta_layer(
            x_BxLxD, self.threshold, initial_state=state, return_final_state=True
        )
        self.sow("intermediates", "delta_sparsity_loss", delta_sparsity_loss(x_BxLxD))
        self.sow("intermediates", "delta_nonzero_fraction", jnp.mean(delta != 0))
        return (recon, final) if return_state else recon

    def step(self, state, x_BxD):
        """One time step: `(state, x_t) -> (state, y_t)`."""
        state, (_, recon) = delta_step(state, x_BxD, self.threshold)
        return state, recon


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
