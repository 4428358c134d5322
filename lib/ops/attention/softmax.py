"""Causal softmax attention, local/chunked attention and a KV cache (Vaswani et al. 2017; TCNCA).

Shapes: `q: [b, lq, h, d]`, `k: [b, lk, hk, d]`, `v: [b, lk, hk, dv]` with `h % hk == 0`
(grouped-query attention when `hk < h`). All softmaxes run in float32; outputs have `q`'s dtype.

Masks are written with absolute positions: query `i` may see key `j` when `j <= i` and
- local (sliding-window) attention: `i - j < window` (the window counts the token itself);
- chunked attention (TCNCA): `i // chunk_size == j // chunk_size`.

Masked keys are removed by selection: when `v` holds a NaN or inf the reference sums the finite
values by matmul and gives each output the IEEE value of its visible non-finite terms (a plain
matmul would compute `0 * inf = NaN` for keys after the query; see `_attend`), and the fused
forms ("xla", "blocked") route such inputs to it. `causal_attention`,
`local_attention` and `chunked_attention` take `q` and `k` of the same length (self-attention);
`cached_attention` is the form for queries against a longer key sequence. Length 0 gives empty
outputs.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lib.ops._checks import (
    check_floats,
    check_method,
    check_positive_int,
    check_rank,
    finite_or,
    on_accelerator,
)


class KVCache(NamedTuple):
    """Decoding cache: keys/values of the first `index` positions (the rest is zeros).

    Attributes:
      k: `[b, max_len, hk, d]` cached keys.
      v: `[b, max_len, hk, dv]` cached values.
      index: int32 scalar, the number of positions written so far.
    """

    k: jax.Array
    v: jax.Array
    index: jax.Array


def _check_qkv(q, k, v, *, same_length=False):
    check_floats(q=q, k=k, v=v)
    check_rank("q", q, 4)
    check_rank("k", k, 4)
    check_rank("v", v, 4)
    if k.shape[:3] != v.shape[:3]:
        raise ValueError(f"`k` and `v` must agree on [b, l, heads], got {k.shape} and {v.shape}")
    if q.shape[0] != k.shape[0] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"`q` and `k` must agree on batch and head dim, got {q.shape}, {k.shape}")
    if q.shape[2] % k.shape[2]:
        raise ValueError(f"`q` heads ({q.shape[2]}) must be a multiple of `k` heads ({k.shape[2]})")
    if same_length and q.shape[1] != k.shape[1]:
        raise ValueError(
            f"`q` and `k` must have the same length for causal self-attention, got {q.shape[1]}"
            f" and {k.shape[1]} (use `cached_attention` for queries against a longer cache)"
        )


def _positive_int(name, value):
    return check_positive_int(name, value)


def _empty(q, v):
    return jnp.zeros((*q.shape[:3], v.shape[-1]), q.dtype)


def _attend(probs, v, mask):
    """`sum_k probs[b,h,q,k] v[b,k,h,:]` over the keys `mask` lets each query see.

    With a finite `v` this is one matmul (masked probabilities are exact zeros). A NaN or inf in
    `v` would make the matmul compute `0 * inf = NaN` for keys after the query, so then the
    finite part is summed with non-finite values zeroed, and each output takes the IEEE value
    of its visible non-finite terms, counted by indicator matmuls: NaN if any visible key is
    NaN (or inf with probability 0) or +inf and -inf meet, else +-inf. Memory stays that of
    `probs` (no [q, k, d] product is formed)."""
    f32 = jnp.float32

    def matmul():
        return jnp.einsum("bhqk,bkhd->bqhd", probs, v)

    def select():
        vis = jnp.broadcast_to(mask, probs.shape)
        o = jnp.einsum("bhqk,bkhd->bqhd", probs, jnp.where(jnp.isfinite(v), v, 0.0))
        count = lambda qk, kd: jnp.einsum("bhqk,bkhd->bqhd", qk.astype(f32), kd.astype(f32))
        live = vis & (probs > 0)
        n_pos, n_neg = count(live, v == jnp.inf), count(live, v == -jnp.inf)
        n_nan = count(vis, jnp.isnan(v)) + count(vis & (probs == 0), jnp.isinf(v))
        o = jnp.where(n_pos > 0, jnp.inf, jnp.where(n_neg > 0, -jnp.inf, o))
        return jnp.where((n_nan > 0) | ((n_pos > 0) & (n_neg > 0)), jnp.nan, o)

    return matmul() if mask is None else finite_or(matmul, select, v)


def _repeat_kv(x, heads):
    return x if x.shape[2] == heads else jnp.repeat(x, heads // x.shape[2], axis=2)


def position_mask(q_pos, k_pos, *, window=None, chunk_size=None):
    """Boolean `[lq, lk]` mask: causal, optionally sliding-window or chunked (see module doc)."""
    qi, kj = q_pos[:, None], k_pos[None, :]
    mask = kj <= qi
    if window is not None:
        mask &= qi - kj < window
    if chunk_size is not None:
        mask &= qi // chunk_size == kj // chunk_size
    return mask


def attention_ref(q, k, v, *, scale=None, mask=None):
    """Plain einsum softmax attention, the reference form.

    Args:
      q, k, v: `[b, lq, h, d]`, `[b, lk, hk, d]`, `[b, lk, hk, dv]`.
      scale: logit scale, default `d ** -0.5`.
      mask: optional boolean, broadcastable to `[b, h, lq, lk]`; True = may attend.
    Returns:
      `[b, lq, h, dv]` in `q.dtype`.
    """
    _check_qkv(q, k, v)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    f32 = jnp.float32
    k, v = _repeat_kv(k, q.shape[2]), _repeat_kv(v, q.shape[2])
    logits = jnp.einsum("bqhd,bkhd->bhqk", q.astype(f32), k.astype(f32)) * scale
    if mask is not None:
        logits = jnp.where(mask, logits, jnp.finfo(f32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    return _attend(probs, v.astype(f32), mask).astype(q.dtype)


def _xla(q, k, v, scale, window):
    local = None if window is None else (window - 1, 0)
    return jax.nn.dot_product_attention(
        q, k, v, scale=scale, is_causal=True, local_window_size=local
    ).astype(q.dtype)


def _blocked(q, k, v, scale, block, lookback):
    """Attention of each length-`block` query block to its own block (+ the previous one)."""
    b, length, h, _ = q.shape
    n = -(-length // block)
    pad = n * block - length
    padded = [jnp.pad(x, ((0, 0), (0, pad), (0, 0), (0, 0))) for x in (q, k, v)]
    qb, kb, vb = [_repeat_kv(x, h).reshape(b, n, block, h, x.shape[3]) for x in padded]
    pos = jnp.arange(block)
    if lookback:  # keys: previous block then own block, relative positions -block..block-1
        shift = lambda x: jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0), (0, 0)))[:, :-1]
        kb = jnp.concatenate([shift(kb), kb], axis=2)
        vb = jnp.concatenate([shift(vb), vb], axis=2)
        mask = position_mask(pos, jnp.arange(-block, block), window=lookback)
        first = jnp.concatenate([jnp.zeros((block,), bool), jnp.ones((block,), bool)])
        mask = jnp.where(jnp.arange(n)[:, None, None] == 0, mask & first, mask)  # [n, q, k]
        mask = mask[None, :, None]
    else:
        mask = position_mask(pos, pos)
    f32 = jnp.float32
    logits = jnp.einsum("bnqhd,bnkhd->bnhqk", qb, kb, preferred_element_type=f32) * scale
    probs = jax.nn.softmax(jnp.where(mask, logits, jnp.finfo(f32).min), axis=-1)
    out = jnp.einsum("bnhqk,bnkhd->bnqhd", probs.astype(vb.dtype), vb, preferred_element_type=f32)
    return out.reshape(b, n * block, h, -1)[:, :length].astype(q.dtype)


def causal_attention(q, k, v, *, scale=None, method="auto"):
    """Causal multi-head softmax attention.

    Args:
      q, k, v: `[b, l, h, d]`, `[b, l, hk, d]`, `[b, l, hk, dv]`.
      scale: logit scale, default `d ** -0.5`.
      method: "ref" (einsum + mask), "xla" (`jax.nn.dot_product_attention`), or "auto" ("xla").
    Returns:
      `[b, l, h, dv]`.
    """
    _check_qkv(q, k, v, same_length=True)
    check_method(method, ("auto", "ref", "xla"))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if q.shape[1] == 0:
        return _empty(q, v)
    pos = jnp.arange(q.shape[1])
    ref = lambda: attention_ref(q, k, v, scale=scale, mask=position_mask(pos, pos))  # noqa: E731
    if method == "ref":
        return ref()
    return finite_or(lambda: _xla(q, k, v, scale, None), ref, q, k, v)


def local_attention(q, k, v, *, window, scale=None, method="auto"):
    """Causal sliding-window attention: position `i` sees keys `i - window + 1 .. i`.

    Args:
      q, k, v: as in `causal_attention`.
      window: positive int, the number of keys each query sees (itself included).
      method: "ref" (full masked einsum, O(l^2)), "xla" (`dot_product_attention` with
        `local_window_size`), "blocked" (blocks of `window` queries attend to their block and the
        previous one: O(l * window)), or "auto" ("xla" on accelerators; "blocked" on CPU when
        `window` is small against `l`, else "xla").
    Returns:
      `[b, l, h, dv]`.
    """
    _check_qkv(q, k, v, same_length=True)
    window = _positive_int("window", window)
    check_method(method, ("auto", "ref", "xla", "blocked"))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if q.shape[1] == 0:
        return _empty(q, v)
    if method == "auto":
        method = "xla" if on_accelerator() or 4 * window > q.shape[1] else "blocked"
    pos = jnp.arange(q.shape[1])
    mask = position_mask(pos, pos, window=window)
    ref = lambda: attention_ref(q, k, v, scale=scale, mask=mask)  # noqa: E731
    if method == "ref":
        return ref()
    if method == "xla":
        return finite_or(lambda: _xla(q, k, v, scale, window), ref, q, k, v)
    return finite_or(lambda: _blocked(q, k, v, scale, window, window), ref, q, k, v)


def chunked_attention(q, k, v, *, chunk_size, scale=None, method="auto"):
    """Causal attention within non-overlapping chunks of `chunk_size` positions (TCNCA).

    Args:
      q, k, v: as in `causal_attention`.
      chunk_size: positive int; position `i` sees keys `j <= i` with `j // chunk_size ==
        i // chunk_size`.
      method: "ref" (full masked einsum), "blocked" (per-chunk attention), or "auto" ("blocked").
    Returns:
      `[b, l, h, dv]`.
    """
    _check_qkv(q, k, v, same_length=True)
    chunk_size = _positive_int("chunk_size", chunk_size)
    check_method(method, ("auto", "ref", "blocked"))
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    if q.shape[1] == 0:
        return _empty(q, v)
    pos = jnp.arange(q.shape[1])
    mask = position_mask(pos, pos, chunk_size=chunk_size)
    ref = lambda: attention_ref(q, k, v, scale=scale, mask=mask)  # noqa: E731
    if method == "ref":
        return ref()
    return finite_or(lambda: _blocked(q, k, v, scale, chunk_size, 0), ref, q, k, v)


def init_kv_cache(batch_size, max_len, num_heads, head_dim, v_dim=None, dtype=jnp.float32):
    """An empty `KVCache` for `max_len` positions."""
    v_dim = head_dim if v_dim is None else v_dim
    return KVCache(
        k=jnp.zeros((batch_size, max_len, num_heads, head_dim), dtype),
        v=jnp.zeros((batch_size, max_len, num_heads, v_dim), dtype),
        index=jnp.zeros((), jnp.int32),
    )


def cached_attention(cache, q, k, v, *, scale=None, window=None, chunk_size=None):
    """Append `k, v` to `cache` and attend with `q` at positions `index .. index + l - 1`.

    Prefill (`l > 1`) and decoding (`l == 1`) are the same call. Writing past `max_len` is not
    detected under `jit` (positions would clamp); size the cache for the whole sequence.

    Args:
      cache: a `KVCache` from `init_kv_cache`.
      q, k, v: `[b, l, h, d]`, `[b, l, hk, d]`, `[b, l, hk, dv]` for the new positions.
      window, chunk_size: optional local / chunked masking, as in `local_attention`,
        `chunked_attention`.
    Returns:
      `(cache, out)` with `out: [b, l, h, dv]`.
    """
    _check_qkv(q, k, v)
    if k.shape[2:] != cache.k.shape[2:] or v.shape[2:] != cache.v.shape[2:]:
        raise ValueError(f"`k`/`v` {k.shape}/{v.shape} do not fit the cache {cache.k.shape}")
    idx = cache.index
    zero = jnp.zeros((), jnp.int32)
    new_k = jax.lax.dynamic_update_slice(cache.k, k.astype(cache.k.dtype), (zero, idx, zero, zero))
    new_v = jax.lax.dynamic_update_slice(cache.v, v.astype(cache.v.dtype), (zero, idx, zero, zero))
    q_pos = idx + jnp.arange(q.shape[1])
    mask = position_mask(q_pos, jnp.arange(cache.k.shape[1]), window=window, chunk_size=chunk_size)
    out = attention_ref(q, new_k, new_v, scale=scale, mask=mask)
    return KVCache(new_k, new_v, idx + q.shape[1]), out


def attention_step(cache, q_t, k_t, v_t, *, scale=None, window=None, chunk_size=None):
    """One decoding step: `q_t: [b, h, d]`, `k_t, v_t: [b, hk, d|dv]` -> `(cache, o_t [b, h, dv])`."""
    check_rank("q_t", q_t, 3)
    check_rank("k_t", k_t, 3)
    check_rank("v_t", v_t, 3)
    cache, out = cached_attention(
        cache, q_t[:, None], k_t[:, None], v_t[:, None], scale=scale, window=window,
        chunk_size=chunk_size,
    )  # fmt: skip
    return cache, out[:, 0]


def rotary_embedding(x, positions, *, base=10000.0):
    """Rotary position embedding (Su et al. 2021), half-split ("NeoX") layout.

    Args:
      x: `[b, l, h, d]` with even `d`.
      positions: `[l]` or `[b, l]` integer (or float) positions.
      base: frequency base.
    Returns:
      `x` rotated, same shape and dtype.
    """
    check_rank("x", x, 4)
    d = x.shape[-1]
    if d % 2:
        raise ValueError(f"`x` head dim must be even for rotary embeddings, got {d}")
    freq = base ** (-jnp.arange(0, d // 2, dtype=jnp.float32) * 2 / d)
    angle = jnp.asarray(positions, jnp.float32)[..., None] * freq  # [(b,) l, d/2]
    angle = angle[..., None, :] if angle.ndim == 3 else angle[None, :, None, :]
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    out = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return out.astype(x.dtype)
