"""LMU mixer in its parallel form (Chilkuri & Eliasmith 2021; LMUFormer, Liu et al. 2024).

Registered as "lmu". Per token: `u_t = W_u x_t` (`memory_dim` scalar signals), the Legendre
memory `m_t = A_bar m_{t-1} + B_bar u_t` of each (`order` coefficients, window `theta` steps),
then `y_t = act(W_m vec(m_t) + W_x x_t)`. With no feedback from `y` into `u` the memory is a
linear time-invariant system, so training runs it as a convolution (`lib.ops.ssm.lmu.lmu_memory`,
FFT or direct) and decoding as the recurrence; both give the same outputs. With `quant=` a
quantized memory is rounded after every step, which is no longer LTI: it runs as a sequential
scan (`lib.ops.quant.scan.lmu_memory_carry_quant`) in training and decoding alike.
"""

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.quant.layers import QuantConfig, as_quant_config, check_carry_quant_method, quant_dense
from lib.nn.registry import register_mixer
from lib.ops.quant import scan as quant_ops
from lib.ops.ssm import lmu as lmu_ops

# Default fixed range of a quantized memory `m [b, memory_dim, order]`: the Legendre
# coefficients of a window of `u` are bounded by a small multiple of `max |u|` (the first is
# the window mean), and `u = W_u x` of normalised inputs is O(1): measured at init on N(0, 1)
# inputs, max |m| 1.4 (std 0.3) at dim 64, order 16, theta 128 over 512 tokens.
# QuantConfig.state_range overrides it.
LMU_STATE_RANGE = 4.0


@register_mixer("lmu")
class LMU(nn.Module):
    """Parallel LMU mixer, `[b, l, dim] -> [b, l, dim]`; state `m: [b, memory_dim, order]`.

    Attributes:
      dim: model width.
      memory_dim: number of memory signals `u` (default `dim // 4`, at least 1).
      order: Legendre coefficients per memory (N).
      theta: memory window in steps.
      activation: applied to the hidden pre-activation (gelu; LMUFormer uses gelu too).
      method: `lmu_memory` method ("auto", "ref", "direct", "fft").
      quant: None (float), a `lib.nn.quant.layers.QuantConfig` or int bits: fake-quantizes the input
        (per token), the kernels of `u_proj`, `m_proj`, `x_proj` (weight spec) and the memory
        `m` after every step (state spec, fixed grid of `[-r, r]`,
        `r = state_range or LMU_STATE_RANGE`). A quantized memory runs the sequential scan
        (method "auto" or "ref"); the convolution forms "direct" and "fft" are refused.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`): the
        projections run in `dtype`, the memory and its state in float32.
    """

    dim: int
    memory_dim: int | None = None
    order: int = 16
    theta: float = 128.0
    activation: Callable = jax.nn.gelu
    method: str = "auto"
    quant: QuantConfig | int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @property
    def mem(self) -> int:
        return self.memory_dim or max(1, self.dim // 4)

    def setup(self):
        pkw = precision.precision_kwargs(self)
        dense = lambda features, **kw: quant_dense(self.quant, features, **pkw, **kw)
        self.u_proj = dense(self.mem, name="u_proj")
        self.m_proj = dense(self.dim, use_bias=False, name="m_proj")
        self.x_proj = dense(self.dim, name="x_proj")
        a_bar, b_bar = lmu_ops.lmu_discretize(self.order, self.theta)
        self.a_bar, self.b_bar = a_bar, b_bar  # constants, float64 NumPy

    def _out(self, m, x):
        m_flat = m.reshape(m.shape[:-2] + (self.mem * self.order,)).astype(x.dtype)
        return self.activation(self.m_proj(m_flat) + self.x_proj(x))

    def _quant(self):
        """(`QuantConfig` or None, the memory quantizer or None)."""
        q = as_quant_config(self.quant)
        return q, None if q is None else q.state_fn(LMU_STATE_RANGE)

    def _input(self, q, x):
        x = precision.cast(x, self.dtype)
        return x if q is None else q.inputs(x).astype(x.dtype)

    def __call__(self, x_BxLxD, state=None, return_state: bool = False):
        """`[b, l, dim] -> [b, l, dim]` (and the final memory when `return_state`)."""
        q, carry_fn = self._quant()
        x_BxLxD = self._input(q, x_BxLxD)
        u = precision.to_float32(self.u_proj(x_BxLxD))  # the memory accumulates in float32
        if carry_fn is None:
            m, final = lmu_ops.lmu_memory(
                u, self.a_bar, self.b_bar, initial_state=state, return_final_state=True,
                method=self.method,
            )  # fmt: skip
        else:
            check_carry_quant_method(self.method, "ref", "LMU")
            m, final = quant_ops.lmu_memory_carry_quant(
                u, self.a_bar, self.b_bar, carry_fn=carry_fn, initial_state=state,
                return_final_state=True,
            )  # fmt: skip
        y = self._out(m, x_BxLxD)
        return (y, final) if return_state else y

    def init_state(self, batch_size: int, dtype=jnp.float32):
        """Zero memory `[b, memory_dim, order]` (float32 or wider)."""
        return jnp.zeros((batch_size, self.mem, self.order), jnp.promote_types(dtype, jnp.float32))

    def step(self, state, x_BxD):
        """One token: `(m, [b, dim]) -> (m, [b, dim])`."""
        q, carry_fn = self._quant()
        x_BxD = self._input(q, x_BxD)
        if q is None:
            u = precision.to_float32(self.u_proj(x_BxD))
            m, _ = lmu_ops.lmu_memory_step(state, u, self.a_bar, self.b_bar)
        else:
            m, _ = quant_ops.lmu_memory_carry_quant_step(
                state, self.u_proj(x_BxD), self.a_bar, self.b_bar, carry_fn=carry_fn
            )
        return m, self._out(m, x_BxD)
