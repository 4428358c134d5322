"""Causal multi-head attention mixers: global, sliding-window and chunked (Vaswani et al. 2017; TCNCA).

Registered as "attention" (global by default) and "local_attention" (sliding window of 128 by
default, or TCNCA's chunked attention with `chunk_size`). Decoding state is a `KVCache` of
`max_len` positions.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.registry import register_mixer
from lib.ops.attention import softmax as attn_ops


@register_mixer("attention")
class MultiHeadAttention(nn.Module):
    """Causal multi-head (optionally grouped-query) softmax attention.

    Attributes:
      dim: model width.
      num_heads: query heads.
      num_kv_heads: key/value heads (default `num_heads`; fewer gives grouped-query attention).
      head_dim: per-head width (default `dim // num_heads`).
      positions: "rope" (rotary on q, k), "learned" (absolute embeddings added to the input,
        at most `max_len` positions) or "none".
      max_len: KV-cache length for decoding (and the learned position table size).
      rope_base: rotary frequency base.
      window: sliding-window size (None: global attention).
      chunk_size: TCNCA chunked attention (None: off); exclusive with `window`.
      method: the op's method (see `lib.ops.attention.softmax`); "auto" by default.
      use_bias: biases in the projections.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the
        softmax runs in float32 and the decoding `KVCache` is float32 whatever `dtype`.
    """

    dim: int
    num_heads: int = 4
    num_kv_heads: int | None = None
    head_dim: int | None = None
    positions: str = "rope"
    max_len: int = 2048
    rope_base: float = 10000.0
    window: int | None = None
    chunk_size: int | None = None
    method: str = "auto"
    use_bias: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.positions not in ("rope", "learned", "none"):
            raise ValueError(
                f"`positions` must be 'rope', 'learned' or 'none', got {self.positions!r}"
            )
        if self.window is not None and self.chunk_size is not None:
            raise ValueError("set at most one of `window` and `chunk_size`")
        hd, hk = self._head_dim, self._kv_heads
        kw = dict(use_bias=self.use_bias, **precision.precision_kwargs(self))
        dense = lambda n, name: nn.DenseGeneral(n, name=name, **kw)
        self.q_proj = dense((self.num_heads, hd), "q")
        self.k_proj = dense((hk, hd), "k")
        self.v_proj = dense((hk, hd), "v")
        self.o_proj = nn.DenseGeneral(self.dim, axis=(-2, -1), name="o", **kw)
        if self.positions == "learned":
            init = nn.initializers.normal(0.02)
            self.pos_emb = self.param("pos_emb", init, (self.max_len, self.dim), self.param_dtype)

    @property
    def _head_dim(self):
        return self.head_dim or self.dim // self.num_heads

    @property
    def _kv_heads(self):
        return self.num_kv_heads or self.num_heads

    def _project(self, x_BxLxD, offset):
        x_BxLxD = precision.cast(x_BxLxD, self.dtype)
        pos = offset + jnp.arange(x_BxLxD.shape[1])
        if self.positions == "learned":
            x_BxLxD = x_BxLxD + self.pos_emb[pos].astype(x_BxLxD.dtype)
        q, k, v = self.q_proj(x_BxLxD), self.k_proj(x_BxLxD), self.v_proj(x_BxLxD)
        if self.positions == "rope":
            q = attn_ops.rotary_embedding(q, pos, base=self.rope_base)
            k = attn_ops.rotary_embedding(k, pos, base=self.rope_base)
        return q, k, v

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]`; with `state` (a `KVCache`) the positions continue it."""
        if state is None and not return_state:
            q, k, v = self._project(x_BxLxD, 0)
            if self.window is not None:
                o = attn_ops.local_attention(q, k, v, window=self.window, method=self.method)
            elif self.chunk_size is not None:
                o = attn_ops.chunked_attention(
                    q, k, v, chunk_size=self.chunk_size, method=self.method
                )
            else:
                o = attn_ops.causal_attention(q, k, v, method=self.method)
            return self.o_proj(o)
        if state is None:
            state = self.init_state(x_BxLxD.shape[0], x_BxLxD.dtype)
        q, k, v = self._project(x_BxLxD, state.index)
        state, o = attn_ops.cached_attention(
            state, q, k, v, window=self.window, chunk_size=self.chunk_size
        )
        return self.o_proj(o.astype(q.dtype)), state

    def init_state(self, batch_size, dtype=jnp.float32):
        """An empty `KVCache` of `max_len` positions (float32 or wider)."""
        return attn_ops.init_kv_cache(
            batch_size, self.max_len, self._kv_heads, self._head_dim,
            dtype=precision.state_dtype(dtype),
        )  # fmt: skip

    def step(self, state, x_BxD):
        """One token: `(KVCache, [b, dim]) -> (KVCache, [b, dim])`."""
        y, state = self(x_BxD[:, None], state=state, return_state=True)
        return state, y[:, 0]


@register_mixer("local_attention")
class LocalAttention(MultiHeadAttention):
    """`MultiHeadAttention` with a sliding window (default 128 positions).

    Set `window=None, chunk_size=c` for TCNCA's chunked attention (attend within chunks of c).
    """

    window: int | None = 128
