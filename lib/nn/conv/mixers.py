"""Convolutional-memory mixers: FSMN (MossFormer2/FRCRN), TCN (TCNCA), Hyena-lite long conv.

Registered as "fsmn", "tcn" and "long_conv". All are causal (FSMN only with `lookahead=0`,
its default) and stream with ring-buffer states (`lib.ops.conv.long.RingState`).
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn import precision
from lib.nn.registry import register_mixer
from lib.ops.conv import fsmn as fsmn_ops
from lib.ops.conv import long as conv_ops
from lib.ops.conv import tcn as tcn_ops


@register_mixer("fsmn")
class FSMN(nn.Module):
    """FSMN block: `p = W_p act(W_h x + b)`, `y = p + sum_i a_i p_{t - i s} (+ look-ahead)`.

    Attributes:
      dim: model width; hidden_dim: width of the hidden layer (default `dim`).
      num_taps: look-back taps N1 (including the current frame).
      lookahead: look-ahead taps N2 (> 0 makes the block non-causal and not streamable).
      dilation: tap spacing s (MossFormer2 grows it layer by layer).
      activation: of the hidden layer (relu, as DFSMN); method: `fsmn` method.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the Dense
        layers run in `dtype`, the memory taps and the ring state in float32.
    """

    dim: int
    hidden_dim: int | None = None
    num_taps: int = 8
    lookahead: int = 0
    dilation: int = 1
    activation: Callable = jax.nn.relu
    method: str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        self.hidden = precision.dense(self, self.hidden_dim or self.dim, name="hidden")
        self.proj = precision.dense(self, self.dim, use_bias=False, name="proj")
        init = nn.initializers.normal(0.1)
        self.left = precision.param(self, "left", init, (self.num_taps, self.dim))
        self.right = (
            precision.param(self, "right", init, (self.lookahead, self.dim))
            if self.lookahead
            else None
        )

    def _p(self, x):
        """The projected frames `p`, in float32 for the memory."""
        return precision.to_float32(self.proj(self.activation(self.hidden(x))))

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `RingState` when `return_state`)."""
        out = fsmn_ops.fsmn(
            self._p(x_BxLxD), self.left, self.right, dilation=self.dilation,
            initial_state=state, return_final_state=return_state, method=self.method,
        )  # fmt: skip
        y, final = out if return_state else (out, None)
        y = y.astype(precision.result_dtype(self, x_BxLxD))
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero ring of past projected frames (`(num_taps - 1) * dilation + 1` of them)."""
        return fsmn_ops.fsmn_init_state(
            batch_size,
            self.num_taps,
            self.dim,
            self.dilation,
            jnp.promote_types(dtype, jnp.float32),
        )

    def step(self, state, x_BxD):
        """One frame: `(RingState, [b, dim]) -> (RingState, [b, dim])` (causal form only)."""
        if self.lookahead:
            raise ValueError("FSMN with lookahead > 0 is not causal and has no step form")
        state, y = fsmn_ops.fsmn_step(state, self._p(x_BxD), self.left, dilation=self.dilation)
        return state, y.astype(precision.result_dtype(self, x_BxD))


@register_mixer("tcn")
class TCN(nn.Module):
    """Dilated causal TCN stack: `x <- x + act(conv_l(x) + b_l)`, dilations `1, 2, 4, ...`.

    Attributes:
      dim: model width; kernel_size: taps per layer; num_layers: layers (receptive field
      `1 + (kernel_size - 1)(2^num_layers - 1)`); activation (gelu); method: conv method.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the
        convolutions run in `dtype`; the ring states are float32.
    """

    dim: int
    kernel_size: int = 3
    num_layers: int = 4
    activation: Callable = jax.nn.gelu
    method: str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(2**i for i in range(self.num_layers))

    def setup(self):
        fan_in = self.kernel_size * self.dim
        init = nn.initializers.normal(fan_in**-0.5)
        self.kernels = [
            precision.param(self, f"kernel_{i}", init, (self.kernel_size, self.dim, self.dim))
            for i in range(self.num_layers)
        ]
        self.biases = [
            precision.param(self, f"bias_{i}", nn.initializers.zeros, (self.dim,))
            for i in range(self.num_layers)
        ]

    def _weights(self):
        """Kernels and biases in the computation dtype."""
        cast = lambda ws: [precision.cast(w, self.dtype) for w in ws]
        return cast(self.kernels), cast(self.biases)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the per-layer ring states when `return_state`)."""
        x = precision.cast(x_BxLxD, self.dtype)
        if state is not None:  # the ring holds float32 inputs: run in the computation dtype
            state = jax.tree.map(lambda s: precision.cast(s, x.dtype), state)
        kernels, biases = self._weights()
        out = tcn_ops.tcn(
            x, kernels, biases, dilations=self.dilations,
            activation=self.activation, initial_state=state, return_final_state=return_state,
            method=self.method,
        )  # fmt: skip
        if not return_state:
            return out
        y, final = out
        return y, jax.tree.map(precision.to_float32, final)

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero ring states, one per layer."""
        return tcn_ops.tcn_init_state(
            batch_size, self.kernel_size, self.dim, self.dilations,
            jnp.promote_types(dtype, jnp.float32),
        )  # fmt: skip

    def step(self, state, x_BxD):
        """One token: `(states, [b, dim]) -> (states, [b, dim])`."""
        x = precision.cast(x_BxD, self.dtype)
        kernels, biases = self._weights()
        state = jax.tree.map(lambda s: precision.cast(s, x.dtype), state)
        state, y = tcn_ops.tcn_step(
            state, x, kernels, biases, dilations=self.dilations, activation=self.activation
        )
        return jax.tree.map(precision.to_float32, state), y


class ImplicitFilter(nn.Module):
    """Hyena's implicit long kernel: an MLP of positional features, times a decay window.

    `k[t] = MLP([t/K, sin(2 pi f t/K), cos(2 pi f t/K)]) * exp(-alpha_c t/K)`, with per-channel
    decay rates `alpha_c` spread log-uniformly (fast and slow channels).
    """

    dim: int
    length: int
    features: int = 16
    width: int = 32
    decay_min: float = 1.0
    decay_max: float = 30.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self):
        """The kernel `[length, dim]`, float32 (a long filter is kept at full precision)."""
        t = jnp.arange(self.length, dtype=jnp.float32)[:, None] / self.length
        f = jnp.arange(1, self.features // 2 + 1, dtype=jnp.float32)[None]
        z = jnp.concatenate([t, jnp.sin(2 * np.pi * f * t), jnp.cos(2 * np.pi * f * t)], -1)
        # the filter MLP is tiny and its output sums over the whole sequence: float32
        dense = lambda n, name: nn.Dense(n, name=name, param_dtype=self.param_dtype)
        h = jnp.sin(dense(self.width, "mlp_in")(z))
        h = jnp.sin(dense(self.width, "mlp_hidden")(h))
        k = dense(self.dim, "mlp_out")(h).astype(jnp.float32)
        alpha = jnp.exp(jnp.linspace(np.log(self.decay_min), np.log(self.decay_max), self.dim))
        return k * jnp.exp(-alpha[None] * t)


@register_mixer("long_conv")
class LongConv(nn.Module):
    """Hyena-lite: `v, gate = W x`, `y = W_o (gate * (fft_conv(v, k) + D v))`.

    One order-2 Hyena step without the short convs: a long causal kernel `k: [max_len, dim]`,
    explicit (a free parameter, as in long-conv baselines) or implicit (`ImplicitFilter`).
    Sequences longer than `max_len` see only the last `max_len` inputs.

    Attributes:
      dim: model width; max_len: kernel length K; kernel: "explicit" or "implicit";
      method: `fft_conv` method ("auto" picks FFT for long kernels).
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the
        projections run in `dtype`; the long convolution and its ring state in float32.
    """

    dim: int
    max_len: int = 1024
    kernel: str = "implicit"
    method: str = "auto"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.kernel not in ("explicit", "implicit"):
            raise ValueError(f"kernel={self.kernel!r}; expected 'explicit' or 'implicit'")
        self.in_proj = precision.dense(self, 2 * self.dim, name="in_proj")
        self.out_proj = precision.dense(self, self.dim, name="out_proj")
        self.D = precision.param(self, "D", nn.initializers.ones, (self.dim,))
        if self.kernel == "explicit":
            decay = jnp.exp(-jnp.arange(self.max_len) / (self.max_len / 8))[:, None]
            self.k_param = precision.param(
                self, "k", lambda key, s: jax.random.normal(key, s) * 0.02 * decay,
                (self.max_len, self.dim),
            )  # fmt: skip
        else:
            self.filter = ImplicitFilter(
                self.dim, self.max_len, name="filter", **precision.precision_kwargs(self)
            )

    def _k(self):
        return self.k_param if self.kernel == "explicit" else self.filter()

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final `RingState` when `return_state`)."""
        v, gate = jnp.split(self.in_proj(x_BxLxD), 2, axis=-1)
        v = precision.to_float32(v)  # the long convolution sums in float32
        out = conv_ops.fft_conv(
            v, self._k(), initial_state=state, return_final_state=return_state, method=self.method
        )
        y, final = out if return_state else (out, None)
        y = self.out_proj(gate * (y + self.D * v).astype(gate.dtype))
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero ring of the last `max_len` projected inputs."""
        return conv_ops.fft_conv_init_state(
            batch_size, self.max_len, self.dim, jnp.promote_types(dtype, jnp.float32)
        )

    def step(self, state, x_BxD):
        """One token: `(RingState, [b, dim]) -> (RingState, [b, dim])`, O(max_len)."""
        v, gate = jnp.split(self.in_proj(x_BxD), 2, axis=-1)
        v = precision.to_float32(v)
        state, y = conv_ops.fft_conv_step(state, v, self._k())
        return state, self.out_proj(gate * (y + self.D * v).astype(gate.dtype))
