"""Spiking layers as Flax Linen modules: LIF/PLIF neurons, spiking dense/conv, a spiking MLP and a SEW residual block (Fang et al. 2021).

Every module takes `dtype` and `param_dtype` (`lib.nn.precision`): synapses (Dense, Conv)
compute in `dtype`, membranes integrate in float32 whatever `dtype`, spikes come out in
`dtype`, and `SpikingMLP`'s logits are float32.

All modules are time-major-second: inputs `[B, L, ...]` (L time steps), outputs spikes of the
same layout. Each module owns its weights and calls `lib.ops.spiking.lif`; recurrent state
(membranes) is explicit: `__call__(x, state=None, return_state=False)`, `init_state(batch)`
and `step(state, x_t) -> (state, y_t)`, as in the mixer protocol (`lib.nn.registry`).
`lib.nn.spiking.mixer` gives any registered sequence mixer spiking activations.
"""

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from lib.nn import precision
from lib.ops.spiking.core import lif, lif_step, spike_fn
from lib.ops.spiking.encode import readout
from lib.ops.spiking.neurons import leaky_integrator


class LIFNeuron(nn.Module):
    """LIF neurons over time (no weights unless `learn_beta`, which makes them PLIF-like).

    Attributes:
      beta: membrane decay; with `learn_beta`, the initial value of a per-neuron decay
        `sigmoid(w)` that is learned (Fang et al. 2021).
      threshold, reset, surrogate, detach_reset: as in `lib.ops.spiking.lif`.
    """

    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    detach_reset: bool = False
    learn_beta: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def _beta(self, neurons):
        if not self.learn_beta:
            return self.beta
        logit = math.log(self.beta / (1.0 - self.beta))  # a Python float, also under jit
        w = self.param("decay_logit", nn.initializers.constant(logit), neurons, self.param_dtype)
        return nn.sigmoid(w.astype(jnp.float32))

    def __call__(self, current_BxLxN, state=None, return_state=False):
        beta = self._beta(current_BxLxN.shape[2:])
        spikes, v = lif(precision.to_float32(current_BxLxN), beta=beta,
                        threshold=self.threshold, reset=self.reset, v0=state,
                        surrogate=self.surrogate, detach_reset=self.detach_reset,
                        return_final_state=True)  # fmt: skip
        spikes = spikes.astype(precision.result_dtype(self, current_BxLxN))
        return (spikes, v) if return_state else spikes

    def step(self, state, current_BxN):
        beta = self._beta(current_BxN.shape[1:])
        v, s = lif_step(state, precision.to_float32(current_BxN), beta=beta,
                        threshold=self.threshold, reset=self.reset, surrogate=self.surrogate,
                        detach_reset=self.detach_reset)  # fmt: skip
        return v, s.astype(precision.result_dtype(self, current_BxN))

    @nn.nowrap
    def init_state(self, batch_size, neurons, dtype=jnp.float32):
        neurons = (neurons,) if isinstance(neurons, int) else tuple(neurons)
        return jnp.zeros((batch_size, *neurons), jnp.float32)


class SpikingDense(nn.Module):
    """Dense synapses then LIF neurons: `[B, L, I] -> spikes [B, L, features]`."""

    features: int
    use_bias: bool = True
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    learn_beta: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        kw = precision.precision_kwargs(self)
        self.dense = nn.Dense(self.features, use_bias=self.use_bias, **kw)
        self.neuron = LIFNeuron(self.beta, self.threshold, self.reset, self.surrogate,
                                learn_beta=self.learn_beta, **kw)  # fmt: skip

    def __call__(self, x_BxLxI, state=None, return_state=False):
        return self.neuron(self.dense(x_BxLxI), state, return_state)

    def step(self, state, x_BxI):
        return self.neuron.step(state, self.dense(x_BxI))

    @nn.nowrap
    def init_state(self, batch_size, dtype=jnp.float32):
        return jnp.zeros((batch_size, self.features), jnp.float32)


class SpikingConv(nn.Module):
    """Convolution applied at every step, then LIF: `[B, L, H, W, C] -> [B, L, H', W', F]`."""

    features: int
    kernel_size: Sequence[int] = (3, 3)
    strides: int | Sequence[int] = 1
    padding: str = "SAME"
    use_bias: bool = False
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    learn_beta: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxLxHxWxC, state=None, return_state=False):
        b, length = x_BxLxHxWxC.shape[:2]
        kw = precision.precision_kwargs(self)
        conv = nn.Conv(self.features, tuple(self.kernel_size), self.strides, self.padding,
                       use_bias=self.use_bias, **kw)  # fmt: skip
        y = conv(x_BxLxHxWxC.reshape((b * length, *x_BxLxHxWxC.shape[2:])))
        y = y.reshape((b, length, *y.shape[1:]))
        neuron = LIFNeuron(self.beta, self.threshold, self.reset, self.surrogate,
                           learn_beta=self.learn_beta, **kw)  # fmt: skip
        return neuron(y, state, return_state)


class SpikingMLP(nn.Module):
    """Spiking MLP classifier: LIF hidden layers, a non-spiking leaky-integrator output layer
    and a readout over time (Zenke & Vogels 2021's standard SNN classifier).

    `__call__(x_BxLxI, return_spikes=False)` returns logits [B, num_classes] and, with
    `return_spikes`, a dict of every layer's input spikes (for `spiking_metrics`; the first
    entry, "input", is the encoded input).
    """

    hidden: Sequence[int] = (128,)
    num_classes: int = 10
    beta: float = 0.9
    out_beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    readout: str = "mean_membrane"
    learn_beta: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        kw = precision.precision_kwargs(self)
        self.layers = [
            SpikingDense(
                h,
                beta=self.beta,
                threshold=self.threshold,
                reset=self.reset,
                surrogate=self.surrogate,
                learn_beta=self.learn_beta,
                **kw,
            )  # fmt: skip
            for h in self.hidden
        ]
        self.head = nn.Dense(self.num_classes, **kw)

    def __call__(self, x_BxLxI, return_spikes=False):
        spikes, h = {"input": x_BxLxI}, x_BxLxI
        for i, layer in enumerate(self.layers):
            h = layer(h)
            spikes[f"hidden{i}"] = h
        v = leaky_integrator(self.head(h), beta=self.out_beta)
        logits = readout(v, self.readout)
        return (logits, spikes) if return_spikes else logits

    @nn.nowrap
    def fan_out(self) -> dict:
        """Synapses per input neuron of each entry of `return_spikes`, for `spiking_metrics`."""
        sizes = (*self.hidden, self.num_classes)
        names = ["input"] + [f"hidden{i}" for i in range(len(self.hidden))]
        return dict(zip(names, sizes))

    @nn.nowrap
    def init_state(self, batch_size, dtype=jnp.float32):
        zeros = lambda n: jnp.zeros((batch_size, n), jnp.float32)
        return tuple(zeros(h) for h in self.hidden) + (zeros(self.num_classes),)

    def step(self, state, x_BxI):
        """One step: `(state, x_t) -> (state, v_out_t)` with the output membrane [B, C]."""
        new, h = [], x_BxI
        for layer, v in zip(self.layers, state[:-1]):
            v, h = layer.step(v, h)
            new.append(v)
        v_out = self.out_beta * state[-1] + self.head(h).astype(jnp.float32)
        return tuple(new) + (v_out,), v_out


class SpikingResidualBlock(nn.Module):
    """Spike-element-wise residual block (SEW-ResNet, Fang et al. 2021), on `[B, L, D]`
    (dense) or `[B, L, H, W, C]` (conv, `kernel_size` given) spikes.

    out = connect(SN(W2 SN(W1 s)), s) with connect "add" (s + y, counts may exceed 1),
    "and" (s * y) or "iand" ((1 - y) * s), the three SEW functions.
    """

    beta: float = 0.9
    threshold: float = 1.0
    surrogate: str = "fast_sigmoid"
    connect: str = "add"
    kernel_size: Sequence[int] | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, s):
        if self.connect not in ("add", "and", "iand"):
            raise ValueError(f"connect must be 'add', 'and' or 'iand', got {self.connect!r}")
        s = precision.cast(s, self.dtype)
        kw = dict(beta=self.beta, threshold=self.threshold, surrogate=self.surrogate,
                  **precision.precision_kwargs(self))  # fmt: skip
        if self.kernel_size is None:
            y = SpikingDense(s.shape[-1], **kw)(SpikingDense(s.shape[-1], **kw)(s))
        else:
            k = tuple(self.kernel_size)
            y = SpikingConv(s.shape[-1], k, **kw)(SpikingConv(s.shape[-1], k, **kw)(s))
        if self.connect == "add":
            return s + y
        if self.connect == "and":
            return s * y
        return (1.0 - y) * s


def spiking_activation(surrogate="fast_sigmoid", threshold=1.0, **params):
    """A stateless spiking nonlinearity `x -> H(x - threshold)` (surrogate backward), for
    use where a layer wants spikes without membrane dynamics."""
    fire = spike_fn(surrogate, **params)
    return lambda x: fire(x - threshold)
