"""Linear-attention mixers: GLA, RetNet and RWKV-6 time mixing (Yang et al. 2024; Sun et al. 2023;
Peng et al. 2024).

Registered as "gla", "retnet" and "rwkv6". Each follows `lib.nn.registry`'s protocol: full
sequences through the chunked ops, token by token through their step forms, with an explicit
state (`[b, h, dk, dv]` plus what the mixer needs: a position for RetNet's rotary embedding, the
previous input for RWKV's token shift).
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.blocks import RMSNorm
from lib.nn.quant.layers import QuantConfig, as_quant_config, check_carry_quant_method, quant_dense
from lib.nn.registry import register_mixer
from lib.ops.attention.softmax import rotary_embedding
from lib.ops.linear_attention.gated import gla, gla_step
from lib.ops.linear_attention.retention import retention, retention_step, retnet_decays
from lib.ops.linear_attention.rwkv import rwkv6, rwkv6_step, token_shift
from lib.ops.quant import scan as quant_ops


def _heads(x, h):
    return x.reshape(*x.shape[:-1], h, x.shape[-1] // h)


def _merge(x):
    return x.reshape(*x.shape[:-2], x.shape[-2] * x.shape[-1])


# Default fixed ranges of a quantized linear-attention state `[b, h, dk, dv]`, a decayed sum of
# k^T v outer products, larger than a normalised SSM's: RetNet's decays (0.97 to 0.996) sum
# more of them than GLA's data-dependent gates. QuantConfig.state_range overrides them.
GLA_STATE_RANGE = 16.0
RETNET_STATE_RANGE = 32.0
# RWKV-6's state sums k^T v with no `dk^-1/2` scale under decays as slow as `exp(-e^-6)` at
# init: measured at init on N(0, 1) inputs, max |S| 26 (std 6) at dim 16 over 64 tokens and
# 86 (std 10) at dim 64 over 512 tokens, so a wider default than GLA's. It is a trade-off: an
# 8-bit grid of [-32, 32] (step 0.25) is coarse for such a state (at dim 16, 64 tokens the
# state's rounding alone gives a mean output error ~10% of the mean |y|; [-16, 16] halves it
# but saturates on longer sequences); pass `state_range` or more state bits to tune it.
RWKV6_STATE_RANGE = 32.0


def _quant_state_fn(module, default_range):
    """The state quantizer of a mixer with `quant`, or None for a float state."""
    q = as_quant_config(module.quant)
    return None if q is None else q.state_fn(default_range)


def _quant_input(module, x):
    """The mixer's input in its computation dtype, fake-quantized per token under `quant`."""
    x = precision.cast(x, module.dtype)
    q = as_quant_config(module.quant)
    return x if q is None else q.inputs(x).astype(x.dtype)


def _dense(module, features, **kwargs):
    """A projection of `module` (`quant_dense`) in its `dtype` and `param_dtype`."""
    return quant_dense(module.quant, features, **precision.precision_kwargs(module), **kwargs)


def _run(module, x_BxLxD, state, return_state):
    """Full-sequence call shared by the mixers: start from `state` or zeros."""
    if state is None and not return_state:
        return module._forward(x_BxLxD, None)[0]
    if state is None:
        state = module.init_state(x_BxLxD.shape[0], x_BxLxD.dtype)
    return module._forward(x_BxLxD, state)


@register_mixer("gla")
class GLA(nn.Module):
    """Gated linear attention layer: low-rank data-dependent forget gates, per-head norm and a
    SiLU output gate. State: `[b, h, dk, dv]` float32.

    Attributes:
      dim: model width.
      num_heads: heads.
      expand_k, expand_v: key and value widths as fractions of `dim` (GLA uses 0.5 and 1).
      gate_rank: rank of the gate projection.
      gate_temperature: `g = log_sigmoid(.) / gate_temperature` (GLA's 16) keeps decays slow.
      chunk_size, method: passed to `lib.ops.linear_attention.gla`.
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: fake-quantizes the input
        (per token), every projection's kernel (weight spec) and the state `[b, h, dk, dv]`
        after every step (state spec, fixed grid of `[-r, r]`,
        `r = state_range or GLA_STATE_RANGE`). A quantized state runs the
        recurrent form (`lib.ops.quant.scan.gla_carry_quant`; method "auto" or "ref"); the
        chunked and kernel forms are refused.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the gates,
        the state and the recurrence run in float32 whatever `dtype`.
    """

    dim: int
    num_heads: int = 4
    expand_k: float = 0.5
    expand_v: float = 1.0
    gate_rank: int = 16
    gate_temperature: float = 16.0
    chunk_size: int = 64
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        dk, dv = int(self.dim * self.expand_k), int(self.dim * self.expand_v)
        if dk % self.num_heads or dv % self.num_heads:
            raise ValueError(f"key/value widths {dk}/{dv} must divide by `num_heads`")
        dense = lambda features, **kw: _dense(self, features, **kw)
        self.q_proj = dense(dk, use_bias=False)
        self.k_proj = dense(dk, use_bias=False)
        self.v_proj = dense(dv, use_bias=False)
        self.g_down = dense(self.gate_rank, use_bias=False)
        self.g_up = dense(dk)
        self.out_gate = dense(dv)
        self.norm = RMSNorm(**precision.precision_kwargs(self))
        self.o_proj = dense(self.dim, use_bias=False)

    def _qkvg(self, x):
        h = self.num_heads
        q, k, v = (_heads(p(x), h) for p in (self.q_proj, self.k_proj, self.v_proj))
        g = jax.nn.log_sigmoid(self.g_up(self.g_down(x)).astype(jnp.float32))
        q, k, v = precision.to_float32(q, k, v)  # the recurrence accumulates in float32
        return q, k, v, _heads(g / self.gate_temperature, h)

    def _out(self, o, x):
        return self.o_proj(_merge(self.norm(o)) * nn.silu(self.out_gate(x)))

    def _forward(self, x, state):
        x = _quant_input(self, x)
        q, k, v, g = self._qkvg(x)
        carry_fn = _quant_state_fn(self, GLA_STATE_RANGE)
        if carry_fn is None:
            o, state = gla(q, k, v, g, initial_state=state, return_final_state=True,
                           chunk_size=self.chunk_size, method=self.method)  # fmt: skip
        else:
            check_carry_quant_method(self.method, "ref", "GLA")
            o, state = quant_ops.gla_carry_quant(
                q, k, v, g, carry_fn=carry_fn, initial_state=state, return_final_state=True
            )
        return self._out(o, x), state

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]` (and the final state when `return_state`)."""
        return _run(self, x_BxLxD, state, return_state)

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zero state `[b, h, dk, dv]` (float32 whatever `dtype`)."""
        dk, dv = int(self.dim * self.expand_k), int(self.dim * self.expand_v)
        h = self.num_heads
        return jnp.zeros((batch_size, h, dk // h, dv // h), jnp.float32)

    def step(self, state, x_BxD):
        """One token: `(state, [b, dim]) -> (state, [b, dim])`."""
        x_BxD = _quant_input(self, x_BxD)
        q, k, v, g = self._qkvg(x_BxD)
        if self.quant is None:
            state, o = gla_step(state, q, k, v, g)
        else:
            state, o = quant_ops.gla_carry_quant_step(
                state, q, k, v, g, carry_fn=_quant_state_fn(self, GLA_STATE_RANGE)
            )
        return state, self._out(o, x_BxD)


class RetNetState(NamedTuple):
    """RetNet decoding state: `S [b, h, dk, dv]` float32 and `index`, the next position."""

    S: jax.Array
    index: jax.Array


@register_mixer("retnet")
class RetNet(nn.Module):
    """Multi-scale retention with rotary positions, per-head norm and a swish output gate.

    Attributes:
      dim: model width.
      num_heads: heads (decays `gamma_h = 1 - 2^(-5-h)`).
      expand_v: value width as a fraction of `dim` (RetNet uses 2).
      rotary: apply rotary embeddings to q, k (RetNet's xPos without its length extrapolation).
      chunk_size, method: passed to `lib.ops.linear_attention.retention.retention`.
      quant: as `GLA`'s (retention is GLA with the gate `log gamma_h`; default state range
        `RETNET_STATE_RANGE`; a quantized state runs
        the recurrent form, method "auto" or "ref"; "parallel" and "chunked" are refused).
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the
        retention (state, decays) runs in float32 whatever `dtype`.
    """

    dim: int
    num_heads: int = 4
    expand_v: float = 2.0
    rotary: bool = True
    chunk_size: int = 64
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        dv = int(self.dim * self.expand_v)
        if self.dim % self.num_heads or dv % self.num_heads:
            raise ValueError(f"`dim` and value width {dv} must divide by `num_heads`")
        dense = lambda features: _dense(self, features, use_bias=False)
        self.q_proj = dense(self.dim)
        self.k_proj = dense(self.dim)
        self.v_proj = dense(dv)
        self.gate = dense(dv)
        self.norm = RMSNorm(**precision.precision_kwargs(self))
        self.o_proj = dense(self.dim)

    def _qkv(self, x_BxLxD, offset):
        h = self.num_heads
        q, k, v = (_heads(p(x_BxLxD), h) for p in (self.q_proj, self.k_proj, self.v_proj))
        if self.rotary:
            pos = offset + jnp.arange(x_BxLxD.shape[1])
            q, k = rotary_embedding(q, pos), rotary_embedding(k, pos)
        return precision.to_float32(q, k, v)  # the retention accumulates in float32

    def _out(self, o, x):
        return self.o_proj(nn.swish(self.gate(x)) * _merge(self.norm(o)))

    def _log_gamma(self, lead_shape):
        """RetNet's per-head log decays broadcast to `lead_shape + (heads,)` (a GLA gate)."""
        return jnp.broadcast_to(
            jnp.log(retnet_decays(self.num_heads)), (*lead_shape, self.num_heads)
        )

    def _forward(self, x, state):
        x = _quant_input(self, x)
        index = 0 if state is None else state.index
        q, k, v = self._qkv(x, index)
        S0 = None if state is None else state.S
        carry_fn = _quant_state_fn(self, RETNET_STATE_RANGE)
        if carry_fn is None:
            o, S = retention(q, k, v, initial_state=S0, return_final_state=True,
                             chunk_size=self.chunk_size, method=self.method)  # fmt: skip
        else:
            check_carry_quant_method(self.method, "ref", "RetNet")
            o, S = quant_ops.gla_carry_quant(
                q, k, v, self._log_gamma(x.shape[:2]), carry_fn=carry_fn, initial_state=S0,
                return_final_state=True,
            )  # fmt: skip
        return self._out(o, x), RetNetState(S, index + x.shape[1])

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `RetNetState` when `return_state`)."""
        return _run(self, x_BxLxD, state, return_state)

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zero `RetNetState`."""
        h, dv = self.num_heads, int(self.dim * self.expand_v)
        S = jnp.zeros((batch_size, h, self.dim // h, dv // h), jnp.float32)
        return RetNetState(S, jnp.zeros((), jnp.int32))

    def step(self, state, x_BxD):
        """One token: `(RetNetState, [b, dim]) -> (RetNetState, [b, dim])`."""
        x_BxD = _quant_input(self, x_BxD)
        q, k, v = self._qkv(x_BxD[:, None], state.index)
        if self.quant is None:
            S, o = retention_step(state.S, q[:, 0], k[:, 0], v[:, 0])
        else:
            S, o = quant_ops.gla_carry_quant_step(
                state.S, q[:, 0], k[:, 0], v[:, 0], self._log_gamma(x_BxD.shape[:1]),
                carry_fn=_quant_state_fn(self, RETNET_STATE_RANGE),
            )  # fmt: skip
        return RetNetState(S, state.index + 1), self._out(o, x_BxD)


class RWKV6State(NamedTuple):
    """RWKV-6 decoding state: `shift [b, dim]` (the previous input) and `S [b, h, dk, dv]`."""

    shift: jax.Array
    S: jax.Array


@register_mixer("rwkv6")
class RWKV6TimeMix(nn.Module):
    """RWKV-6 time mixing: data-dependent token shift (ddlerp), data-dependent decay, bonus `u`,
    per-head norm and a SiLU gate.

    Attributes:
      dim: model width (also the key and value width).
      num_heads: heads; head size `dim // num_heads`.
      mix_rank, decay_rank: ranks of the LoRA projections for the token-shift mix and the decay.
      chunk_size, method: passed to `lib.ops.linear_attention.rwkv.rwkv6`.
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: fake-quantizes the input
        (per token), every Dense kernel and the token-shift LoRA matrices `mix_down`, `mix_up`
        (weight spec; the vectors `mu_x`, `mu`, `decay_base`, `u` stay float, like biases),
        and the state `S [b, h, dk, dv]` after every step (state spec, fixed grid of
        `[-r, r]`, `r = state_range or RWKV6_STATE_RANGE`). The token-shift state holds the
        previous input after its per-token quantization (on the input grid, not the state's).
        A quantized state runs the recurrent form (`lib.ops.quant.scan.rwkv6_carry_quant`;
        method "auto" or "ref"); "chunked" is refused.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the decay,
        the state `S` and the token-shift state are float32 whatever `dtype`.
    """

    dim: int
    num_heads: int = 4
    mix_rank: int = 32
    decay_rank: int = 64
    chunk_size: int = 64
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        d, h = self.dim, self.num_heads
        if d % h:
            raise ValueError(f"`dim` ({d}) must divide by `num_heads` ({h})")
        uni = lambda lo, hi: lambda key, shape: jax.random.uniform(key, shape, jnp.float32, lo, hi)
        param = lambda name, init, shape: precision.param(self, name, init, shape)
        self.mu_x = param("mu_x", uni(0.0, 1.0), (d,))
        self.mu = param("mu", uni(0.0, 1.0), (5, d))  # w, k, v, r, g
        self.mix_down = param("mix_down", nn.initializers.normal(1e-2), (d, 5, self.mix_rank))
        self.mix_up = param("mix_up", nn.initializers.zeros, (5, self.mix_rank, d))
        self.decay_base = param("decay_base", uni(-6.0, -1.0), (d,))
        dense = lambda features, **kw: _dense(self, features, use_bias=False, **kw)
        self.decay_down = dense(self.decay_rank)
        self.decay_up = dense(d, kernel_init=nn.initializers.zeros)
        self.u = param("u", uni(-0.5, 0.5), (h, d // h))
        self.r_proj, self.k_proj, self.v_proj, self.g_proj = (dense(d) for _ in range(4))
        self.norm = RMSNorm(**precision.precision_kwargs(self))
        self.o_proj = dense(d)

    def _inputs(self, x, x_prev):
        """ddlerp and projections; `x, x_prev: [..., dim]`."""
        xx = x_prev - x
        base = x + xx * self.mu_x
        q = as_quant_config(self.quant)
        mix_down, mix_up = (
            (self.mix_down, self.mix_up)
            if q is None
            else (q.weights(self.mix_down), q.weights(self.mix_up))
        )
        lora = jnp.einsum("...d,dfr->...fr", jnp.tanh(base), mix_down)
        lora = jnp.einsum("...fr,frd->...fd", jnp.tanh(lora), mix_up)
        xs = x[..., None, :] + xx[..., None, :] * (self.mu + lora)  # [..., 5, dim]
        x_w, x_k, x_v, x_r, x_g = (xs[..., i, :].astype(x.dtype) for i in range(5))
        logit = self.decay_base + self.decay_up(jnp.tanh(self.decay_down(x_w))).astype(jnp.float32)
        g = -jnp.exp(logit.astype(jnp.float32))  # log decay <= 0, in float32
        h = self.num_heads
        r, k, v = (
            _heads(p(z), h) for p, z in ((self.r_proj, x_r), (self.k_proj, x_k), (self.v_proj, x_v))
        )
        r, k, v = precision.to_float32(r, k, v)  # the recurrence accumulates in float32
        return r, k, v, _heads(g, h), nn.silu(self.g_proj(x_g))

    def _out(self, o, gate):
        return self.o_proj(_merge(self.norm(o)) * gate)

    def _forward(self, x, state):
        x = _quant_input(self, x)
        x_prev = token_shift(x, None if state is None else state.shift.astype(x.dtype))
        r, k, v, g, gate = self._inputs(x, x_prev)
        S0 = None if state is None else state.S
        carry_fn = _quant_state_fn(self, RWKV6_STATE_RANGE)
        if carry_fn is None:
            o, S = rwkv6(r, k, v, g, self.u, initial_state=S0, return_final_state=True,
                         chunk_size=self.chunk_size, method=self.method)  # fmt: skip
        else:
            check_carry_quant_method(self.method, "ref", "RWKV-6")
            o, S = quant_ops.rwkv6_carry_quant(
                r, k, v, g, self.u, carry_fn=carry_fn, initial_state=S0, return_final_state=True
            )
        shift = x[:, -1].astype(precision.state_dtype(x.dtype))
        return self._out(o, gate), RWKV6State(shift, S)

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `RWKV6State` when `return_state`)."""
        return _run(self, x_BxLxD, state, return_state)

    def init_state(self, batch_size, dtype=jnp.float32):
        """Zero `RWKV6State`."""
        d, h = self.dim, self.num_heads
        return RWKV6State(
            jnp.zeros((batch_size, d), precision.state_dtype(dtype)),
            jnp.zeros((batch_size, h, d // h, d // h), jnp.float32),
        )

    def step(self, state, x_BxD):
        """One token: `(RWKV6State, [b, dim]) -> (RWKV6State, [b, dim])`."""
        x_BxD = _quant_input(self, x_BxD)
        r, k, v, g, gate = self._inputs(x_BxD, state.shift.astype(x_BxD.dtype))
        if self.quant is None:
            S, o = rwkv6_step(state.S, r, k, v, g, self.u)
        else:
            S, o = quant_ops.rwkv6_carry_quant_step(
                state.S, r, k, v, g, self.u, carry_fn=_quant_state_fn(self, RWKV6_STATE_RANGE)
            )
        shift = x_BxD.astype(state.shift.dtype)  # (quantized: float32 inputs, the state's dtype)
        return RWKV6State(shift, S), self._out(o.astype(x_BxD.dtype), gate)
