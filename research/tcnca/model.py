"""TCNCA: Temporal Convolution Network with Chunked Attention (Terzic et al., 2023), small scale.

A MEGA-chunk block (Ma et al., 2023) whose linear recurrence is swappable: `TCNCAMixer`
(registered as the mixer "tcnca") computes a context `c` from the input `x` with

- `recurrence="tcn"`: a dilated causal TCN (`lib.ops.conv.tcn.tcn`, dilations 1, 2, 4, ...,
  depthwise by default), TCNCA's choice, O(L);
- `recurrence="ema"`: MEGA's multi-dimensional damped EMA as an FFT convolution
  (`research.tcnca.ema`, on `lib.ops.conv.long.fft_conv`), O(L log L): the baseline;
- `recurrence="none"`: `c = x` (chunked attention alone, a control),

then MEGA's gated single-stream attention with queries and keys from `c`, values from `x`,
attending only within chunks of `chunk_size` (`lib.ops.attention.softmax.chunked_attention`):

    c = silu(R(x))                    (R(x) = TCN(x) incl. its residuals, or EMA(x) + omega x)
    z = silu(W_z c);  q = z g_q + b_q;  k = z g_k + b_k      (rotary positions on q, k)
    v = silu(W_v x);  r = silu(W_r c);  u = sigmoid(W_u c)
    o = chunked_attention(q, k, v)
    y = u * silu(W_h c + U_h (r * o))

`lib.nn.SequenceModel` wraps it in pre-norm residual blocks with a gated MLP. The mixer
follows the `lib.nn.registry` protocol (state, `init_state`, `step`). `build(config)` gives
one such language model (`config.model.recurrence`) and a generated task (MQAR associative
recall, or copying) drawn in memory from its `lib.data` builder to
`lib.train.loop.train_and_evaluate`; `launch/tcnca.py` runs the study over recurrences,
sequence lengths and vocabulary sizes.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.data import stream
from lib.nn import sizing
from lib.nn.registry import register_mixer
from lib.ops.attention import softmax as attn_ops
from lib.ops.conv import tcn as tcn_ops
from lib.train import losses
from research.tcnca import ema as ema_ops

RECURRENCES = ("tcn", "ema", "none")


@register_mixer("tcnca")
class TCNCAMixer(nn.Module):
    """TCNCA / MEGA-chunk token mixer (module docstring); causal.

    Attributes:
      dim: model width.
      recurrence: "tcn" (TCNCA), "ema" (MEGA's damped EMA by FFT) or "none".
      chunk_size: attention chunk length.
      num_heads: attention heads (head width `dim // num_heads`).
      kernel_size, num_layers, depthwise: the TCN (receptive field
        `1 + (kernel_size - 1)(2^num_layers - 1)`); depthwise taps `[K, dim]` or full `[K, dim, dim]`.
      ema_ndim: the EMA's expansion N per channel.
      rope: rotary positions on queries and keys.
      max_len: positions of the decoding KV cache.
      method: the TCN's `lib.ops.conv.tcn` method; the EMA uses "fft" (or "ref" when set to "ref").
      dtype: computation dtype of the projections (None: from the inputs, as `nn.Dense`).
      param_dtype: dtype of the projections' parameters.
    """

    dim: int
    recurrence: str = "tcn"
    chunk_size: int = 32
    num_heads: int = 2
    kernel_size: int = 3
    num_layers: int = 4
    depthwise: bool = True
    ema_ndim: int = 16
    rope: bool = True
    max_len: int = 2048
    method: str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"recurrence={self.recurrence!r}; expected one of {RECURRENCES}")
        if self.dim % self.num_heads or (self.dim // self.num_heads) % 2:
            raise ValueError(f"dim={self.dim} must split into {self.num_heads} even-width heads")
        if self.recurrence == "tcn":
            shape = (self.kernel_size, self.dim) + (() if self.depthwise else (self.dim,))
            fan_in = self.kernel_size * (1 if self.depthwise else self.dim)
            init = nn.initializers.normal(fan_in**-0.5)
            self.tcn_kernels = [self.param(f"tcn_kernel_{i}", init, shape) for i in range(self.num_layers)]  # fmt: skip
            self.tcn_biases = [
                self.param(f"tcn_bias_{i}", nn.initializers.zeros, (self.dim,))
                for i in range(self.num_layers)
            ]
        elif self.recurrence == "ema":
            shape = (self.dim, self.ema_ndim)
            sign = jnp.where(jnp.arange(self.ema_ndim) % 2 == 0, 1.0, -1.0)
            beta_init = lambda key, s: sign + 0.02 * jax.random.normal(key, s)
            self.alpha_logit = self.param("alpha_logit", nn.initializers.normal(0.2), shape)
            self.delta_logit = self.param("delta_logit", nn.initializers.normal(0.2), shape)
            self.beta = self.param("beta", beta_init, shape)
            self.eta = self.param("eta", nn.initializers.normal(1.0), shape)
            self.omega = self.param("omega", nn.initializers.normal(1.0), (self.dim,))
        hd = self.dim // self.num_heads
        dense = functools.partial(nn.Dense, dtype=self.dtype, param_dtype=self.param_dtype)
        self.z_proj = dense(self.dim, name="z")
        self.qk_scale = self.param("qk_scale", nn.initializers.normal(0.02), (2, self.dim))
        self.qk_offset = self.param("qk_offset", nn.initializers.zeros, (2, self.dim))
        self.v_proj, self.r_proj = dense(self.dim, name="v"), dense(self.dim, name="r")
        self.u_proj, self.h_proj = dense(self.dim, name="u"), dense(self.dim, name="hc")
        self.o_proj = dense(self.dim, use_bias=False, name="ho")
        self._hd = hd

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.num_layers))

    def _context(self, x, rec_state, stateful):
        """`c = silu(R(x))` and the recurrence's final state (None when not `stateful`)."""
        if self.recurrence == "none":
            return x, rec_state
        if self.recurrence == "tcn":
            out = tcn_ops.tcn(
                x, self.tcn_kernels, self.tcn_biases, dilations=self.dilations,
                activation=jax.nn.gelu, initial_state=rec_state, return_final_state=stateful,
                method=self.method,
            )  # fmt: skip
            y, rec_state = out if stateful else (out, None)
            return jax.nn.silu(y), rec_state
        params = (self.alpha_logit, self.delta_logit, self.beta, self.eta)
        if stateful:  # the recurrence itself carries the state
            y, rec_state = ema_ops.ema_ref(x, *params, initial_state=rec_state)
        else:
            y = ema_ops.ema(x, *params, method="ref" if self.method == "ref" else "fft")
        return jax.nn.silu(y + self.omega * x), rec_state

    def _heads(self, x_BxLxD):
        return x_BxLxD.reshape(x_BxLxD.shape[:2] + (self.num_heads, self._hd))

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]`; with `state` (from `init_state`) positions continue it."""
        stateful = state is not None or return_state
        if stateful and state is None:
            state = self.init_state(x_BxLxD.shape[0], x_BxLxD.dtype)
        rec_state, cache = state if stateful else (None, None)
        c, rec_state = self._context(x_BxLxD, rec_state, stateful)
        z = jax.nn.silu(self.z_proj(c))
        q = self._heads(z * (1 + self.qk_scale[0]) + self.qk_offset[0])
        k = self._heads(z * (1 + self.qk_scale[1]) + self.qk_offset[1])
        v = self._heads(jax.nn.silu(self.v_proj(x_BxLxD)))
        offset = cache.index if stateful else 0
        if self.rope:
            pos = offset + jnp.arange(x_BxLxD.shape[1])
            q, k = attn_ops.rotary_embedding(q, pos), attn_ops.rotary_embedding(k, pos)
        if stateful:
            cache, o = attn_ops.cached_attention(cache, q, k, v, chunk_size=self.chunk_size)
        else:
            o = attn_ops.chunked_attention(q, k, v, chunk_size=self.chunk_size)
        o = o.reshape(x_BxLxD.shape)
        r = jax.nn.silu(self.r_proj(c))
        u = jax.nn.sigmoid(self.u_proj(c))
        y = u * jax.nn.silu(self.h_proj(c) + self.o_proj(r * o))
        return (y, (rec_state, cache)) if stateful else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """`(recurrence state, KVCache)`: TCN ring buffers, the EMA's `h: [b, dim, N]`, or
        None; and an empty cache of `max_len` positions."""
        if self.recurrence == "tcn":
            rec = tcn_ops.tcn_init_state(
                batch_size, self.kernel_size, self.dim, self.dilations,
                jnp.promote_types(dtype, jnp.float32),
            )  # fmt: skip
        elif self.recurrence == "ema":
            rec = ema_ops.ema_init_state(batch_size, self.dim, self.ema_ndim)
        else:
            rec = None
        cache = attn_ops.init_kv_cache(batch_size, self.max_len, self.num_heads, self.dim // self.num_heads, dtype=dtype)  # fmt: skip
        return rec, cache

    def step(self, state, x_BxD):
        """One token: `(state, [b, dim]) -> (state, [b, dim])`."""
        y, state = self(x_BxD[:, None], state=state, return_state=True)
        return state, y[:, 0]


def make_model(recurrence: str, dim: int, depth: int, vocab: int, **mixer_kwargs):
    """A TCNCA language `SequenceModel` (pre-norm blocks: the mixer, then a gated MLP)."""
    return sizing.language_model(
        "tcnca", dim, depth, vocab, {"recurrence": recurrence, **mixer_kwargs}
    )


def build(config) -> dict:
    """Model, loss and data for `config` (see configs/recall.py): the keyword arguments of
    `lib.train.loop.train_and_evaluate`; `on_end` adds `params` to the final metrics.

    The model is `make_model(config.model.recurrence, ...)` with the mixer options
    `config.model.mixer`; the task `config.data.task` (`mqar`, or `copying`) with the builder
    options `config.data.options`, fresh batches every step, fixed validation and test sets.
    """
    d, m = config.data, config.model
    task = stream.sequence_task(
        d.task, options=d.options, batch_size=d.batch_size, seed=config.seed,
        eval_batches=d.eval_batches, test_batches=d.test_batches,
    )  # fmt: skip
    model = make_model(m.recurrence, m.dim, m.depth, task["vocab_size"], **dict(m.mixer))

    def on_end(state, workdir):
        return {"params": sizing.count_params(model)}

    return dict(
        model=model,
        loss_fn=losses.lm_loss_fn,
        train_data=task["train_data"],
        eval_data=task["eval_data"],
        test_data=task["test_data"],
        on_end=on_end,
    )
