"""Sparsity: magnitude pruning, N:M masks, DSFormer's dense x sparse factorization (Chand et al.
2023), SpAtten's cascade token/head pruning (Wang et al. 2021) and the Delta activation layer
for temporal sparsity (Yousefzadeh & Sifalakis 2021).

Shape letters: B batch, L length (time), H heads, D features, K kept tokens.
"""

import functools

import jax
import jax.numpy as jnp

from lib.ops._checks import check_rank
from lib.ops.quant.formats import fake_quant, int_scale


def magnitude_mask(w, sparsity: float, *, axis=None):
    """Mask keeping the largest-|w| `1 - sparsity` fraction (per tensor, or per kept `axis`).

    Ties at the threshold are all kept. Returns a bool array like `w`.
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    a = jnp.abs(w)
    if axis is None:
        flat = a.reshape(-1)
        k = max(1, round(flat.size * (1 - sparsity)))
        thr = jax.lax.top_k(flat, k)[0][-1]
        return a >= thr
    a_last = jnp.moveaxis(a, axis, -1)  # rank within each slice along `axis`
    k = max(1, round(a_last.shape[-1] * (1 - sparsity)))
    thr = jax.lax.top_k(a_last, k)[0][..., -1:]
    return jnp.moveaxis(a_last >= thr, -1, axis)


@functools.partial(jax.jit, static_argnames=("n", "m", "axis"))
def nm_mask(w, n: int = 2, m: int = 4, *, axis: int = 0):
    """N:M semi-structured mask: in every group of `m` consecutive entries along `axis`, keep
    the `n` largest |w| (ties broken by position). Default axis 0 = the input (reduction)
    axis of a `[d_in, d_out]` kernel, as sparse tensor cores need.

    Returns:
      bool array like `w` with exactly `n` True per group.
    """
    if not (0 < n <= m):
        raise ValueError(f"need 0 < n <= m, got n={n}, m={m}")
    axis %= w.ndim
    size = w.shape[axis]
    if size % m:
        raise ValueError(f"axis {axis} of size {size} (shape {w.shape}) is not divisible by m={m}")
    a = jnp.moveaxis(jnp.abs(w), axis, -1)
    g = a.reshape(a.shape[:-1] + (size // m, m))
    _, idx = jax.lax.top_k(g, n)
    mask = jnp.sum(jax.nn.one_hot(idx, m, dtype=jnp.int32), axis=-2) > 0
    return jnp.moveaxis(mask.reshape(a.shape), -1, axis)


def is_valid_nm(mask, n: int = 2, m: int = 4, *, axis: int = 0) -> bool:
    """True when every group of `m` along `axis` has at most `n` nonzeros."""
    axis %= mask.ndim
    a = jnp.moveaxis(mask != 0, axis, -1)
    g = a.reshape(a.shape[:-1] + (a.shape[-1] // m, m))
    return bool(jnp.all(jnp.sum(g, -1) <= n))


def sparsify_ste(w, mask):
    """`w * mask` forward, identity gradient to every entry of `w` (straight-through)."""
    return w + jax.lax.stop_gradient(w * mask - w)


def nm_sparsify_ste(w, n: int = 2, m: int = 4, *, axis: int = 0):
    """DSFormer's straight-through factorizer step: the N:M mask is recomputed from the
    current dense weights every call and the gradient reaches all of them."""
    return sparsify_ste(w, nm_mask(jax.lax.stop_gradient(w), n, m, axis=axis))


def dsformer_apply(x, dense, sparse, n: int = 2, m: int = 4):
    """`x @ dense @ nm(sparse)`: DSFormer's dense x semi-structured sparse factorization.

    Args:
      x: `[..., d_in]`; dense: `[d_in, k]`; sparse: `[k, d_out]` (sparsified N:M along k,
        the reduction axis of the second product, with a straight-through gradient).

    Returns:
      `[..., d_out]`.
    """
    return x @ dense @ nm_sparsify_ste(sparse, n, m, axis=0)


# --- SpAtten: cascade token and head pruning ---------------------------------------------


def token_importance(probs_BxHxLqxLk):
    """Attention received by each key token, summed over heads and queries: `[B, Lk]`."""
    check_rank("probs", probs_BxHxLqxLk, 4)
    return jnp.sum(probs_BxHxLqxLk, axis=(1, 2))


def head_importance(heads_BxLxHxD):
    """Magnitude of each head's output, summed over batch, tokens and features: `[H]`."""
    check_rank("heads", heads_BxLxHxD, 4)
    return jnp.sum(jnp.abs(heads_BxLxHxD), axis=(0, 1, 3))


def topk_keep(importance, k: int):
    """Indices of the `k` most important entries along the last axis, in original order."""
    _, idx = jax.lax.top_k(importance, k)
    return jnp.sort(idx, axis=-1)


def spatten_prune_tokens(x_BxLxD, probs_BxHxLxL, acc_BxL, keep: int, positions_BxL=None):
    """One cascade step: accumulate importance, keep the top-`keep` tokens, drop the rest.

    Pruned tokens are gone for every later layer (the cascade); `acc` (the accumulated
    importance) and `positions` (original token indices) are pruned with them.

    Args:
      x_BxLxD: token features entering the next layer.
      probs_BxHxLxL: this layer's attention probabilities over the current tokens.
      acc_BxL: importance accumulated by earlier layers (zeros at the first layer).
      keep: K, tokens to keep.
      positions_BxL: original indices of the current tokens (default arange).

    Returns:
      (x_BxKxD, acc_BxK, positions_BxK).
    """
    b, l, _ = x_BxLxD.shape
    if not 1 <= keep <= l:
        raise ValueError(f"keep must be in [1, {l}], got {keep}")
    if positions_BxL is None:
        positions_BxL = jnp.broadcast_to(jnp.arange(l), (b, l))
    acc = acc_BxL + token_importance(probs_BxHxLxL)
    idx = topk_keep(acc, keep)
    take = functools.partial(jnp.take_along_axis, axis=1)
    return take(x_BxLxD, idx[..., None]), take(acc, idx), take(positions_BxL, idx)


def spatten_head_mask(heads_BxLxHxD, acc_H, keep: int):
    """Accumulate head importance and return `(mask [H] float, acc [H])` keeping `keep` heads."""
    acc = acc_H + head_importance(heads_BxLxHxD)
    h = acc.shape[0]
    if not 1 <= keep <= h:
        raise ValueError(f"keep must be in [1, {h}], got {keep}")
    mask = jnp.zeros((h,)).at[topk_keep(acc, keep)].set(1.0)
    return mask, acc


def spatten_progressive_attention(q, k, v, *, msb_bits=4, full_bits=8, threshold=0.1):
    """SpAtten's progressive quantization: attend with MSB-only keys/values, and fetch the LSBs
    (recompute at `full_bits`) only for queries whose attention is flat (max prob < threshold).

    Args:
      q, k, v: `[B, L, H, D]`; keys and values are quantized per tensor (symmetric int).
      msb_bits, full_bits: bits of the first fetch and after fetching the LSBs.
      threshold: a query row whose largest probability is below it refetches.

    Returns:
      (out `[B, L, H, D]`, refetched `[B, H, L]` bool, bits_fetched_per_kv_element): the last is
      `msb_bits + (full_bits - msb_bits) * mean(refetched)`, the DRAM-traffic estimate.
    """

    def quant(t, bits):
        scale, _ = int_scale(t, bits)
        return fake_quant(t, bits, scale=scale)

    scale = q.shape[-1] ** -0.5

    def attend(kk, vv):
        p = jax.nn.softmax(jnp.einsum("blhd,bmhd->bhlm", q, kk) * scale, axis=-1)
        return p, jnp.einsum("bhlm,bmhd->blhd", p, vv)

    p_msb, out_msb = attend(quant(k, msb_bits), quant(v, msb_bits))
    _, out_full = attend(quant(k, full_bits), quant(v, full_bits))
    refetch = jnp.max(p_msb, axis=-1) < threshold  # [B, H, L]
    out = jnp.where(jnp.swapaxes(refetch, 1, 2)[..., None], out_full, out_msb)
    bits = msb_bits + (full_bits - msb_bits) * jnp.mean(refetch.astype(jnp.float32))
    return out, refetch, bits


# --- Delta activation layer ----------------------------------------------------------------


def delta_step(state_BxD, x_BxD, threshold: float):
    """One step of the Delta layer. State: the receiver's last reconstruction `[B, D]`.

    Returns:
      (state, (delta_BxD, recon_BxD)): the transmitted change (zero where
      |x - state| <= threshold) and the updated reconstruction.
    """
    d = x_BxD - state_BxD
    sent = jnp.where(jnp.abs(d) > threshold, d, 0.0)
    recon = state_BxD + sent
    return recon, (sent, recon)


@functools.partial(jax.jit, static_argnames=("return_final_state",))
def delta_layer(x_BxLxD, threshold: float, *, initial_state=None, return_final_state=False):
    """Temporal-sparsity Delta layer over axis 1 (a `lax.scan` of `delta_step`).

    Forward: the reconstruction the receiver holds (values change only when a delta is
    sent). Backward: straight-through (identity to `x`), as when training with the layer.

    Args:
      x_BxLxD: activations over time (any trailing feature shape).
      threshold: a Python float (static under jit); changes with |delta| <= threshold are
        not transmitted.
      initial_state: `[B, ...]` last reconstruction (default zeros).

    Returns:
      (recon_BxLxD, delta_BxLxD) [, final_state]: `delta` is what is transmitted (its
      zeros are the activation sparsity).
    """
    check_rank("x", x_BxLxD, tuple(range(2, 8)))
    s0 = jnp.zeros_like(x_BxLxD[:, 0]) if initial_state is None else initial_state
    xs = jax.lax.stop_gradient(jnp.moveaxis(x_BxLxD, 1, 0))
    final, (sent, recon) = jax.lax.scan(
        lambda s, xt: delta_step(s, xt, threshold), jax.lax.stop_gradient(s0), xs
    )
    recon = jnp.moveaxis(recon, 0, 1)
    recon = x_BxLxD + jax.lax.stop_gradient(recon - x_BxLxD)
    out = (recon, jnp.moveaxis(sent, 0, 1))
    return out + (final,) if return_final_state else out


def delta_sparsity_loss(x_BxLxD):
    """The Delta layer's sparsity loss: mean L1 of temporal differences `|x_t - x_{t-1}|`."""
    return jnp.mean(jnp.abs(jnp.diff(x_BxLxD, axis=1)))


def activation_sparsity(x):
    """Fraction of exact zeros in `x`."""
    return jnp.mean((x == 0).astype(jnp.float32))
