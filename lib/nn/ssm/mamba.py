"""Mamba blocks (Gu & Dao 2023; Dao & Gu 2024): in-proj, causal conv, selective scan/SSD, gate.

Registered as mixers "mamba" and "mamba2". Use it inside `PreNormBlock(..., mlp_hidden_dim=0)` for the
original architecture (Mamba blocks carry no separate MLP).
"""

import functools
import math
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.quant.layers import QuantConfig, as_quant_config, check_carry_quant_method, quant_dense
from lib.nn.registry import register_mixer
from lib.ops.conv import causal as conv_ops
from lib.ops.quant import scan as quant_ops
from lib.ops.ssm import selective as ssm_ops
from lib.ops.ssm import ssd as ssd_ops


class MambaState(NamedTuple):
    """Streaming state: `conv` [b, conv_width-1, d_inner] inputs, `ssm` [b, d_inner, n] float32."""

    conv: jax.Array
    ssm: jax.Array


def dt_bias_init(dt_min: float = 1e-3, dt_max: float = 1e-1, dt_floor: float = 1e-4):
    """Initialiser for the dt bias: softplus(bias) is log-uniform in [dt_min, dt_max]."""

    def init(key, shape, dtype=jnp.float32):
        u = jax.random.uniform(key, shape, dtype)
        dt = jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = jnp.maximum(dt, dt_floor)
        return dt + jnp.log(-jnp.expm1(-dt))  # inverse of softplus

    return init


def s4d_real_log_init(key, shape, dtype=jnp.float32):
    """A_log for A = -[1, 2, ..., n] per channel (S4D-Real); `shape` = (d, n)."""
    del key
    return jnp.log(jnp.broadcast_to(jnp.arange(1, shape[-1] + 1, dtype=dtype), shape))


def _symmetric_uniform(limit: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


@register_mixer("mamba")
class Mamba(nn.Module):
    """Mamba (S6) mixer block.

    Attributes:
      dim: model width.
      state_dim: SSM state size n per channel.
      expand: inner width `d_inner = expand * dim`.
      conv_width: causal conv taps.
      dt_rank: rank of the delta projection; None gives ceil(dim / 16).
      dt_min, dt_max: range of the initial step sizes.
      method: `selective_scan` method ("auto", "scan", "associative", "chunked", "pallas").
      chunk_size: chunk length for method="chunked".
      use_bias: biases on the in/out projections.
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: fake-quantizes the
        block's input (per token), the kernels of the four projections and the conv taps
        (weight spec), and the SSM state `[b, d_inner, n]` after every step (state spec,
        fixed grid of `[-r, r]`, `r = state_range or MAMBA_STATE_RANGE`). `A`, `D` and the dt
        bias stay float. A quantized state makes the scan nonlinear: `method="auto"` then runs
        the sequential `lib.ops.quant.scan.selective_scan_carry_quant`, "scan" too; the
        parallel and kernel forms are refused.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the
        projections run in `dtype`; the causal conv, the selective scan and the state (conv
        inputs and SSM) in float32 whatever `dtype`.
    """

    dim: int
    state_dim: int = 16
    expand: int = 2
    conv_width: int = 4
    dt_rank: int | None = None
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    method: str = "auto"
    chunk_size: int = 64
    use_bias: bool = False
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def d_inner(self) -> int:
        return self.expand * self.dim

    @property
    def _dt_rank(self) -> int:
        return self.dt_rank or math.ceil(self.dim / 16)

    def setup(self):
        d, n, r = self.d_inner, self.state_dim, self._dt_rank
        dense = functools.partial(quant_dense, self.quant, **precision.precision_kwargs(self))
        param = functools.partial(precision.param, self)
        self.in_proj = dense(2 * d, use_bias=self.use_bias, name="in_proj")
        self.conv_weight = param(
            "conv_weight", nn.initializers.lecun_normal(in_axis=0, out_axis=()), (self.conv_width, d)
        )  # fmt: skip
        self.conv_bias = param("conv_bias", nn.initializers.zeros, (d,))
        self.x_proj = dense(r + 2 * n, use_bias=False, name="x_proj")
        self.dt_proj = dense(
            d,
            use_bias=False,
            kernel_init=_symmetric_uniform(r**-0.5),
            name="dt_proj",
        )
        self.dt_bias = param("dt_bias", dt_bias_init(self.dt_min, self.dt_max), (d,))
        self.A_log = param("A_log", s4d_real_log_init, (d, n))
        self.D = param("D", nn.initializers.ones, (d,))
        self.out_proj = dense(self.dim, use_bias=self.use_bias, name="out_proj")

    @property
    def _q(self) -> QuantConfig | None:
        return as_quant_config(self.quant)

    def _inputs_and_conv(self, x):
        """The (quantized) block input, in the computation dtype, and conv taps."""
        x, q = precision.cast(x, self.dtype), self._q
        if q is None:
            return x, self.conv_weight
        return q.inputs(x).astype(x.dtype), q.weights(self.conv_weight)

    def _carry_fn(self):
        """The state quantizer, or None for a float state."""
        return None if self._q is None else self._q.state_fn(MAMBA_STATE_RANGE)

    def _ssm_inputs(self, x):
        """x [..., d_inner] after the conv -> (delta, B, C)."""
        r, n = self._dt_rank, self.state_dim
        x_dbl = self.x_proj(x)
        dt_low, B, C = jnp.split(x_dbl, [r, r + n], axis=-1)
        return precision.to_float32(self.dt_proj(dt_low), B, C)  # the scan's inputs

    def _A(self):
        return -jnp.exp(self.A_log.astype(jnp.float32))

    def __call__(self, x_BxLxD, state: MambaState | None = None, return_state: bool = False):
        """[b, l, dim] -> [b, l, dim] (and the new `MambaState` when `return_state`)."""
        x_BxLxD, conv_weight = self._inputs_and_conv(x_BxLxD)
        xz = precision.to_float32(self.in_proj(x_BxLxD))  # conv and scan in float32
        x, z = jnp.split(xz, 2, axis=-1)
        conv_state = None if state is None else state.conv
        x, conv_last = conv_ops.causal_conv1d(
            x, conv_weight, self.conv_bias, initial_state=conv_state,
            activation="silu", return_final_state=True,
        )  # fmt: skip
        delta, B, C = self._ssm_inputs(x)
        h0 = None if state is None else state.ssm
        carry_fn = self._carry_fn()
        if carry_fn is None:
            y, h_last = ssm_ops.selective_scan(
                x, delta, self._A(), B, C, self.D, z=z, delta_bias=self.dt_bias,
                delta_softplus=True, initial_state=h0, return_final_state=True,
                method=self.method, chunk_size=self.chunk_size,
            )  # fmt: skip
        else:
            check_carry_quant_method(self.method, "scan", "Mamba")
            y, h_last = quant_ops.selective_scan_carry_quant(
                x, delta, self._A(), B, C, self.D, z=z, delta_bias=self.dt_bias,
                delta_softplus=True, carry_fn=carry_fn, initial_state=h0,
                return_final_state=True,
            )  # fmt: skip
        out = self.out_proj(y)
        if return_state:
            return out, MambaState(conv=conv_last, ssm=h_last)
        return out

    def init_state(self, batch_size: int, dtype=jnp.float32) -> MambaState:
        """Zero state: conv inputs and SSM state in float32 (or wider)."""
        return MambaState(
            conv=jnp.zeros(
                (batch_size, self.conv_width - 1, self.d_inner), precision.state_dtype(dtype)
            ),
            ssm=jnp.zeros((batch_size, self.d_inner, self.state_dim), jnp.float32),
        )

    def step(self, state: MambaState, x_BxD):
        """One token: `(MambaState, [b, dim]) -> (MambaState, [b, dim])`."""
        x_BxD, conv_weight = self._inputs_and_conv(x_BxD)
        x, z = jnp.split(precision.to_float32(self.in_proj(x_BxD)), 2, axis=-1)
        conv_state, x = conv_ops.causal_conv1d_step(
            conv_ops.ConvState(state.conv), x, conv_weight, self.conv_bias, activation="silu"
        )
        delta, B, C = self._ssm_inputs(x)
        if self._q is not None:  # the full form's step, quantized state or not
            h, y = quant_ops.selective_scan_carry_quant_step(
                state.ssm, x, delta, self._A(), B, C, self.D, z_t=z, delta_bias=self.dt_bias,
                delta_softplus=True, carry_fn=self._carry_fn(),
            )  # fmt: skip
            return MambaState(conv=conv_state.x, ssm=h), self.out_proj(y)
        ssm_state, y = ssm_ops.selective_scan_step(
            ssm_ops.SelectiveScanState(state.ssm), x, delta, self._A(), B, C, self.D, z_t=z,
            delta_bias=self.dt_bias, delta_softplus=True,
        )  # fmt: skip
        return MambaState(conv=conv_state.x, ssm=ssm_state.h), self.out_proj(y)


MAMBA_STATE_RANGE = 4.0  # default fixed range of a quantized Mamba state (state_range overrides)


class Mamba2State(NamedTuple):
    """Streaming state: `conv` [b, conv_width-1, d_inner + 2 groups n], `ssm` [b, h, p, n]."""

    conv: jax.Array
    ssm: jax.Array


@register_mixer("mamba2")
class Mamba2(nn.Module):
    """Mamba-2 mixer block (Dao & Gu 2024): one in-projection to (z, x, B, C, dt), a causal
    conv over (x, B, C), SSD with a scalar decay per head, a gated RMSNorm, out-projection.

    Attributes:
      dim: model width.
      state_dim: n, the state size per head channel.
      expand: `d_inner = expand * dim`.
      head_dim: p; `heads = d_inner // head_dim`.
      groups: B/C groups shared by heads (heads % groups == 0).
      conv_width: causal conv taps.
      chunk_size: SSD chunk length.
      method: `ssd` method ("auto", "scan", "chunked").
      dt_min, dt_max: initial step-size range; A is initialised uniform in [1, 16] (negated).
      norm_eps: epsilon of the gated RMSNorm.
      quant: as `Mamba`'s (the block's input, the two projections' kernels and the conv taps;
        the state `[b, heads, p, n]` after every step on the fixed grid of `[-r, r]`,
        `r = state_range or MAMBA_STATE_RANGE`). A quantized state runs SSD's recurrence as
        `lib.ops.quant.scan.gla_carry_quant` (q = C, k = B, v = dt x, g = dt A, scale 1);
        method "auto" or "scan", "chunked" is refused.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the two
        projections run in `dtype`; the conv, SSD, the gated norm and the state in float32.
    """

    dim: int
    state_dim: int = 16
    expand: int = 2
    head_dim: int = 16
    groups: int = 1
    conv_width: int = 4
    chunk_size: int = 64
    method: str = "auto"
    dt_min: float = 1e-3
    dt_max: float = 1e-1
    norm_eps: float = 1e-5
    use_bias: bool = False
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def d_inner(self) -> int:
        return self.expand * self.dim

    @property
    def heads(self) -> int:
        if self.d_inner % self.head_dim:
            raise ValueError(f"head_dim={self.head_dim} must divide d_inner={self.d_inner}")
        return self.d_inner // self.head_dim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.groups * self.state_dim

    def setup(self):
        h = self.heads
        kw = precision.precision_kwargs(self)
        self.in_proj = quant_dense(
            self.quant, self.d_inner + self.conv_dim + h, use_bias=self.use_bias, **kw
        )
        param = functools.partial(precision.param, self)
        self.conv_weight = param(
            "conv_weight",
            nn.initializers.lecun_normal(in_axis=0, out_axis=()),
            (self.conv_width, self.conv_dim),
        )
        self.conv_bias = param("conv_bias", nn.initializers.zeros, (self.conv_dim,))
        self.dt_bias = param("dt_bias", dt_bias_init(self.dt_min, self.dt_max), (h,))
        a_init = lambda key, shape: jnp.log(jax.random.uniform(key, shape, minval=1, maxval=16))
        self.A_log = param("A_log", a_init, (h,))
        self.D = param("D", nn.initializers.ones, (h,))
        self.norm_scale = param("norm_scale", nn.initializers.ones, (self.d_inner,))
        self.out_proj = quant_dense(self.quant, self.dim, use_bias=self.use_bias, **kw)

    def _split_in(self, zxbcdt):
        d, c = self.d_inner, self.conv_dim
        return zxbcdt[..., :d], zxbcdt[..., d : d + c], zxbcdt[..., d + c :]

    def _split_conv(self, xbc):
        d, gn = self.d_inner, self.groups * self.state_dim
        lead = xbc.shape[:-1]
        x = xbc[..., :d].reshape(*lead, self.heads, self.head_dim)
        B = xbc[..., d : d + gn].reshape(*lead, self.groups, self.state_dim)
        C = xbc[..., d + gn :].reshape(*lead, self.groups, self.state_dim)
        return x, B, C

    def _out(self, y, z):
        """Gated RMSNorm then out-projection; y [..., heads, p], z [..., d_inner]."""
        y = y.reshape(*y.shape[:-2], self.d_inner).astype(jnp.float32)
        y = y * jax.nn.silu(z.astype(jnp.float32))
        y = y * jax.lax.rsqrt(jnp.mean(y * y, -1, keepdims=True) + self.norm_eps)
        return self.out_proj((y * self.norm_scale).astype(self.dtype or z.dtype))

    def _A(self):
        return -jnp.exp(self.A_log.astype(jnp.float32))

    def __call__(self, x_BxLxD, state: Mamba2State | None = None, return_state: bool = False):
        """[b, l, dim] -> [b, l, dim] (and the new `Mamba2State` when `return_state`)."""
        q = as_quant_config(self.quant)
        conv_weight, x_BxLxD = self.conv_weight, precision.cast(x_BxLxD, self.dtype)
        if q is not None:
            x_BxLxD, conv_weight = q.inputs(x_BxLxD).astype(x_BxLxD.dtype), q.weights(conv_weight)
        # the conv, SSD and the gated norm in float32 whatever `dtype`
        z, xbc, dt = self._split_in(precision.to_float32(self.in_proj(x_BxLxD)))
        xbc, conv_last = conv_ops.causal_conv1d(
            xbc, conv_weight, self.conv_bias, activation="silu", return_final_state=True,
            initial_state=None if state is None else state.conv,
        )  # fmt: skip
        x, B, C = self._split_conv(xbc)
        h0 = None if state is None else state.ssm
        carry_fn = None if q is None else q.state_fn(MAMBA_STATE_RANGE)
        if carry_fn is None:
            y, h_last = ssd_ops.ssd(
                x, dt, self._A(), B, C, self.D, dt_bias=self.dt_bias, dt_softplus=True,
                initial_state=h0, return_final_state=True, chunk_size=self.chunk_size,
                method=self.method,
            )  # fmt: skip
        else:
            check_carry_quant_method(self.method, "scan", "Mamba-2")
            y, h_last = self._ssd_carry_quant(x, dt, B, C, h0, carry_fn)
        out = self._out(y, z)
        return (out, Mamba2State(conv=conv_last, ssm=h_last)) if return_state else out

    def _ssd_carry_quant(self, x, dt, B, C, h0, carry_fn):
        """SSD with `carry_fn` on the state after every step, as GLA with a scalar gate per
        head (whose state `[b, h, n, p]` is SSD's transposed): `(y, final [b, h, p, n])`."""
        xdt, log_a, Bh, Ch = ssd_ops._prepare(x, dt, self._A(), B, C, self.dt_bias, True, None)
        S0 = None if h0 is None else jnp.swapaxes(h0.astype(jnp.float32), -1, -2)
        o, S = quant_ops.gla_carry_quant(
            Ch, Bh, xdt, log_a, scale=1.0, carry_fn=carry_fn, initial_state=S0,
            return_final_state=True,
        )  # fmt: skip
        y = o + x.astype(jnp.float32) * self.D.astype(jnp.float32)[:, None]
        return y.astype(x.dtype), jnp.swapaxes(S, -1, -2)

    def init_state(self, batch_size: int, dtype=jnp.float32) -> Mamba2State:
        """Zero state: conv inputs and SSD state in float32 (or wider)."""
        return Mamba2State(
            conv=jnp.zeros(
                (batch_size, self.conv_width - 1, self.conv_dim), precision.state_dtype(dtype)
            ),
            ssm=jnp.zeros((batch_size, self.heads, self.head_dim, self.state_dim), jnp.float32),
        )

    def step(self, state: Mamba2State, x_BxD):
        """One token: `(Mamba2State, [b, dim]) -> (Mamba2State, [b, dim])`."""
        if self.quant is not None:  # the full form on one token: the same rounding per step
            y, state = self(x_BxD[:, None], state=state, return_state=True)
            return state, y[:, 0]
        x_BxD = precision.cast(x_BxD, self.dtype)
        z, xbc, dt = self._split_in(precision.to_float32(self.in_proj(x_BxD)))
        conv_state, xbc = conv_ops.causal_conv1d_step(
            conv_ops.ConvState(state.conv), xbc, self.conv_weight, self.conv_bias,
            activation="silu",
        )  # fmt: skip
        x, B, C = self._split_conv(xbc)
        ssm_state, y = ssd_ops.ssd_step(
            ssd_ops.SSDState(state.ssm), x, dt, self._A(), B, C, self.D, dt_bias=self.dt_bias,
            dt_softplus=True,
        )  # fmt: skip
        return Mamba2State(conv=conv_state.x, ssm=ssm_state.h), self._out(y, z)
