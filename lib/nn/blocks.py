"""Pre-norm residual blocks with RMSNorm and a SwiGLU MLP (Zhang & Sennrich 2019; Shazeer 2020).

`PreNormBlock` wraps any registered mixer: `x + mixer(norm(x))`, then `x + mlp(norm(x))`.
It follows the mixer protocol of `lib.nn.registry` (state, `init_state`, `step`), passing the
state through to its mixer, so blocks stack into recurrent models that decode token by token.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.registry import get_mixer


class RMSNorm(nn.Module):
    """Root-mean-square layer norm over the last axis, computed in float32.

    Attributes:
      eps: added to the mean square.
      use_scale: learn a per-feature scale (initialised to one).
    """

    eps: float = 1e-6
    use_scale: bool = True

    @nn.compact
    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        if self.use_scale:
            y = y * self.param("scale", nn.initializers.ones, (x.shape[-1],), jnp.float32)
        return y.astype(x.dtype)


class GatedMLP(nn.Module):
    """SwiGLU feed-forward: `down(act(gate(x)) * up(x))`.

    Attributes:
      dim: input and output width.
      hidden_dim: inner width; default `8/3 * dim` rounded up to a multiple of 8.
      activation: gate nonlinearity (SiLU gives SwiGLU, GELU gives GeGLU).
      use_bias: biases on the three projections.
    """

    dim: int
    hidden_dim: int | None = None
    activation: Any = nn.silu
    use_bias: bool = False

    @nn.compact
    def __call__(self, x_BxLxD):
        hidden = self.hidden_dim or -(-(8 * self.dim // 3) // 8) * 8
        gate = nn.Dense(hidden, use_bias=self.use_bias, name="gate")(x_BxLxD)
        up = nn.Dense(hidden, use_bias=self.use_bias, name="up")(x_BxLxD)
        return nn.Dense(self.dim, use_bias=self.use_bias, name="down")(self.activation(gate) * up)


class PreNormBlock(nn.Module):
    """norm -> mixer -> residual -> norm -> gated MLP -> residual.

    Attributes:
      dim: model width.
      mixer: registered mixer name (see `lib.nn.registry`).
      mixer_kwargs: extra constructor fields of the mixer (besides `dim`).
      mlp_hidden_dim: inner width of the MLP (None: `GatedMLP`'s default); 0 drops the MLP
        (for mixers such as Mamba's block that carry their own).
      norm_eps: RMSNorm epsilon.
    """

    dim: int
    mixer: str = "attention"
    mixer_kwargs: Mapping[str, Any] | None = None
    mlp_hidden_dim: int | None = None
    norm_eps: float = 1e-6

    def setup(self):
        self.mixer_norm = RMSNorm(self.norm_eps)
        self.mix = get_mixer(self.mixer)(dim=self.dim, **dict(self.mixer_kwargs or {}))
        if self.mlp_hidden_dim != 0:
            self.mlp_norm = RMSNorm(self.norm_eps)
            self.mlp = GatedMLP(self.dim, self.mlp_hidden_dim)

    def _mlp(self, x):
        return x if self.mlp_hidden_dim == 0 else x + self.mlp(self.mlp_norm(x))

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]`, or `(y, state)` when `return_state`."""
        h = self.mixer_norm(x_BxLxD)
        if state is None and not return_state:
            return self._mlp(x_BxLxD + self.mix(h))
        y, state = self.mix(h, state=state, return_state=True)
        return self._mlp(x_BxLxD + y), state

    def init_state(self, batch_size, dtype=jnp.float32):
        """The mixer's zero state."""
        return self.mix.init_state(batch_size, dtype)

    def step(self, state, x_BxD):
        """One token: `(state, [b, dim]) -> (state, [b, dim])`."""
        state, y = self.mix.step(state, self.mixer_norm(x_BxD))
        return state, self._mlp(x_BxD + y)
