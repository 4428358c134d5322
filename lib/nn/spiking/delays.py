"""A dense layer with learnable synaptic delays, DCLS-style (Hammouamri, Khalfaoui-Hassani & Masquelier 2023).

`DelayedDense` owns weights W [I, O] and continuous delay positions P [I, O] (in steps,
initialised uniformly in [0, max_delay]); during training it builds the Gaussian-interpolated
kernel `lib.ops.spiking.delays.dcls_kernel(W, P, max_delay, sigma)`, with `sigma` supplied by
the caller from `dcls_sigma(step, ...)` so that it narrows over training; with
`rounded=True` (inference) positions snap to integer delays. Follow it with LIF neurons
(`lib.nn.spiking.layers.LIFNeuron`) for a spiking layer with delays.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.ops.spiking.delays import (
    dcls_kernel,
    dcls_rounded_kernel,
    delay_buffer_init,
    delayed_dense,
    delayed_dense_step,
)


class DelayedDense(nn.Module):
    """Dense synapses with one learnable delay each: `[B, L, I] -> [B, L, features]`.

    Attributes:
      features: output width O.
      max_delay: the largest delay D in steps (the kernel has D + 1 taps).
      use_bias: add a bias after the delayed sum.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); the kernel
        is built in float32 from the float32 parameters, then used in `dtype`; the streaming
        buffer is float32.
    """

    features: int
    max_delay: int = 16
    use_bias: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def _params(self, inputs):
        """W [I, O], P [I, O] and the bias (0 when unused); the one compact method, shared by
        `__call__` and `step`."""
        w = self.param(
            "kernel", nn.initializers.lecun_normal(), (inputs, self.features), self.param_dtype
        )
        p = precision.param(
            self,
            "positions",
            lambda key, shape: jax.random.uniform(key, shape, jnp.float32, 0.0, self.max_delay),
            (inputs, self.features),
        )
        b = 0.0
        if self.use_bias:
            b = self.param("bias", nn.initializers.zeros, (self.features,), self.param_dtype)
        return w, p, b

    def _kernel(self, inputs, sigma, rounded):
        w, p, b = self._params(inputs)
        if rounded:
            return dcls_rounded_kernel(w, p, self.max_delay), b
        sigma = self.max_delay / 2.0 if sigma is None else sigma
        return dcls_kernel(w, p, self.max_delay, sigma), b

    def __call__(self, x_BxLxI, sigma=None, rounded: bool = False):
        """Args: x [B, L, I]; sigma: Gaussian width (default max_delay / 2); rounded: use
        integer delays (inference). Returns [B, L, features]."""
        kernel, b = self._kernel(x_BxLxI.shape[-1], sigma, rounded)
        if self.dtype is None:
            return delayed_dense(x_BxLxI, kernel) + b
        x, kernel = x_BxLxI.astype(self.dtype), kernel.astype(self.dtype)
        return (delayed_dense(x, kernel) + b).astype(self.dtype)

    @nn.nowrap
    def init_state(self, batch_size, inputs, dtype=jnp.float32):
        """Ring buffer of the last `max_delay + 1` inputs, [B, D+1, I]."""
        return delay_buffer_init(
            batch_size, self.max_delay + 1, inputs, precision.state_dtype(dtype)
        )

    def step(self, state, x_BxI, sigma=None, rounded: bool = True):
        """Streaming form: `(buffer, x_t) -> (buffer, y_t [B, features])`."""
        kernel, b = self._kernel(x_BxI.shape[-1], sigma, rounded)
        state, y = delayed_dense_step(state, x_BxI, kernel)
        return state, (y + b).astype(precision.result_dtype(self, x_BxI))
