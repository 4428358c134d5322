"""Spiking activations for any registered sequence mixer (after Spikformer, Zhou et al. 2023, and SpikeGPT, Zhu et al. 2023).

`SpikingMixer(dim, mixer="gla", ...)` turns the mixer's input into spikes with LIF neurons,
runs the inner mixer (any name in `lib.nn.registry`) on the spikes and, with `spike_output`
(the default), passes its output through a second LIF layer, so the block exchanges only
binary events. It is itself registered as the mixer "spiking" and follows the mixer protocol:
the state is a `SpikingMixerState` holding both membranes and the inner mixer's state, and
`step` equals the corresponding position of `__call__`.
"""

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn import precision
from lib.nn.blocks import make_mixer
from lib.nn.registry import register_mixer
from lib.ops.spiking.core import lif, lif_step


class SpikingMixerState(NamedTuple):
    """Membranes before (`v_in`) and after (`v_out`) the inner mixer, [B, D], and its state."""

    v_in: jax.Array
    inner: Any
    v_out: jax.Array


@register_mixer("spiking")
class SpikingMixer(nn.Module):
    """A registered mixer with LIF spiking activations on its input (and output).

    Attributes:
      dim: model width.
      mixer: name of the inner mixer (any registered one except "spiking").
      mixer_kwargs: extra constructor fields of the inner mixer.
      beta, threshold, reset, surrogate, detach_reset: the LIF neurons (`lib.ops.spiking.lif`).
      spike_output: pass the inner mixer's output through LIF neurons too.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`), passed to
        the inner mixer; the membranes integrate in float32 whatever `dtype`.
    """

    dim: int
    mixer: str = "attention"
    mixer_kwargs: dict | None = None
    beta: float = 0.9
    threshold: float = 1.0
    reset: str = "subtract"
    surrogate: str = "fast_sigmoid"
    detach_reset: bool = False
    spike_output: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        if self.mixer == "spiking":
            raise ValueError("SpikingMixer cannot wrap itself; name an inner mixer")
        kw = precision.precision_kwargs(self)
        self.inner = make_mixer(self.mixer, self.dim, self.mixer_kwargs, **kw)

    def _lif(self, x, **kw):
        """LIF neurons on `x`, integrating in float32; spikes in the computation dtype."""
        out = lif(precision.to_float32(x), **self._lif_kwargs, **kw)
        if kw.get("return_final_state"):
            return out[0].astype(self.dtype or x.dtype), out[1]
        return out.astype(self.dtype or x.dtype)

    @property
    def _lif_kwargs(self):
        return dict(beta=self.beta, threshold=self.threshold, reset=self.reset,
                    surrogate=self.surrogate, detach_reset=self.detach_reset)  # fmt: skip

    def __call__(self, x_BxLxD, state: SpikingMixerState | None = None, return_state=False):
        out_dtype = precision.result_dtype(self, x_BxLxD)
        if state is None and not return_state:  # stateless: let the inner mixer use its
            s = self._lif(x_BxLxD)  # parallel form, without a decoding cache
            y = self.inner(s)
            y = self._lif(y) if self.spike_output else y
            return y.astype(out_dtype)
        if state is None:
            state = self.init_state(x_BxLxD.shape[0], x_BxLxD.dtype)
        s, v_in = self._lif(x_BxLxD, v0=state.v_in, return_final_state=True)
        y, inner = self.inner(s, state=state.inner, return_state=True)
        v_out = state.v_out
        if self.spike_output:
            y, v_out = self._lif(y, v0=v_out, return_final_state=True)
        y = y.astype(out_dtype)
        return (y, SpikingMixerState(v_in, inner, v_out)) if return_state else y

    def init_state(self, batch_size, dtype=jnp.float32) -> SpikingMixerState:
        zeros = jnp.zeros((batch_size, self.dim), jnp.float32)
        return SpikingMixerState(zeros, self.inner.init_state(batch_size, dtype), zeros)

    def step(self, state: SpikingMixerState, x_BxD):
        out_dtype = precision.result_dtype(self, x_BxD)
        v_in, s = lif_step(state.v_in, x_BxD.astype(jnp.float32), **self._lif_kwargs)
        inner, y = self.inner.step(state.inner, s.astype(out_dtype))
        v_out = state.v_out
        if self.spike_output:
            v_out, y = lif_step(v_out, y.astype(jnp.float32), **self._lif_kwargs)
        return SpikingMixerState(v_in, inner, v_out), y.astype(out_dtype)
