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

from lib.nn import precision
from lib.nn.registry import get_mixer


class RMSNorm(nn.Module):
    """Root-mean-square layer norm over the last axis, computed in float32.

    Attributes:
      eps: added to the mean square.
      use_scale: learn a per-feature scale (initialised to one).
      dtype: output dtype (None: the input's); the norm itself is computed in float32.
      param_dtype: dtype of the scale.
    """

    eps: float = 1e-6
    use_scale: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        x32 = x.astype(jnp.float32)
        y = x32 * jax.lax.rsqrt(jnp.mean(x32 * x32, axis=-1, keepdims=True) + self.eps)
        if self.use_scale:
            scale = self.param("scale", nn.initializers.ones, (x.shape[-1],), self.param_dtype)
            y = y * scale.astype(jnp.float32)
        return y.astype(precision.result_dtype(self, x))


class GatedMLP(nn.Module):
    """SwiGLU feed-forward: `down(act(gate(x)) * up(x))`.

    Attributes:
      dim: input and output width.
      hidden_dim: inner width; default `8/3 * dim` rounded up to a multiple of 8.
      activation: gate nonlinearity (SiLU gives SwiGLU, GELU gives GeGLU).
      use_bias: biases on the three projections.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`).
    """

    dim: int
    hidden_dim: int | None = None
    activation: Any = nn.silu
    use_bias: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxLxD):
        hidden = self.hidden_dim or -(-(8 * self.dim // 3) // 8) * 8
        dense = lambda n, name: precision.dense(self, n, use_bias=self.use_bias, name=name)
        gate = dense(hidden, "gate")(x_BxLxD)
        up = dense(hidden, "up")(x_BxLxD)
        return dense(self.dim, "down")(self.activation(gate) * up)


def make_mixer(name, dim, mixer_kwargs=None, *, dtype=None, param_dtype=jnp.float32, **kw):
    """The registered mixer `name` with `dim`, its `mixer_kwargs` and the precision fields
    (`mixer_kwargs` may set `dtype`/`param_dtype` itself: they win).

    A mixer class without the precision fields (one registered outside `lib.nn`) is built
    without them when they have their defaults, and refused otherwise."""
    cls = get_mixer(name)
    fields = {}
    if hasattr(cls, "dtype") and hasattr(cls, "param_dtype"):
        fields = {"dtype": dtype, "param_dtype": param_dtype}
    elif dtype is not None or jnp.dtype(param_dtype) != jnp.float32:
        raise ValueError(
            f"mixer {name!r} ({cls.__name__}) has no `dtype`/`param_dtype` fields: it cannot "
            f"run with dtype={dtype}, param_dtype={param_dtype}"
        )
    return cls(dim=dim, **{**fields, **dict(mixer_kwargs or {})}, **kw)


class PreNormBlock(nn.Module):
    """norm -> mixer -> residual -> norm -> gated MLP -> residual.

    Attributes:
      dim: model width.
      mixer: registered mixer name (see `lib.nn.registry`).
      mixer_kwargs: extra constructor fields of the mixer (besides `dim`).
      mlp_hidden_dim: inner width of the MLP (None: `GatedMLP`'s default); 0 drops the MLP
        (for mixers such as Mamba's block that carry their own).
      norm_eps: RMSNorm epsilon.
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`), passed to the
        norms, the mixer and the MLP.
    """

    dim: int
    mixer: str = "attention"
    mixer_kwargs: Mapping[str, Any] | None = None
    mlp_hidden_dim: int | None = None
    norm_eps: float = 1e-6
    dtype: Any = None
    param_dtype: Any = jnp.float32

    def setup(self):
        kw = precision.precision_kwargs(self)
        self.mixer_norm = RMSNorm(self.norm_eps, **kw)
        self.mix = make_mixer(self.mixer, self.dim, self.mixer_kwargs, **kw)
        if self.mlp_hidden_dim != 0:
            self.mlp_norm = RMSNorm(self.norm_eps, **kw)
            self.mlp = GatedMLP(self.dim, self.mlp_hidden_dim, **kw)

    def _mlp(self, x):
        return x if self.mlp_hidden_dim == 0 else x + self.mlp(self.mlp_norm(x))

    def __call__(self, x_BxLxD, state=None, return_state=False):
        """`[b, l, dim] -> [b, l, dim]`, or `(y, state)` when `return_state`."""
        h = self.mixer_norm(x_BxLxD)
        x_BxLxD = precision.cast(x_BxLxD, self.dtype)
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
        return state, self._mlp(precision.cast(x_BxD, self.dtype) + y)
