"""Deconstructing recurrence, attention and gating (Heidenreich, Vlachas & Koumoutsakos 2024).

One next-step forecaster whose blocks switch three components on or off as hyper-parameters:

- recurrence: "none" (per-time-step MLP only), "elman" (tanh RNN: recurrence without gates),
  "gru" (recurrence + gating), "lstm" (recurrence + gating + a separate cell memory);
- attention: False / True (causal softmax attention, `lib.nn.attention.mixers`), on its own when
  recurrence is "none" (a Transformer) or after each recurrent block (a hybrid).

Every block is pre-norm with a residual and a gated MLP (`lib.nn.blocks`). The model reads
`inputs` float [b, l, d] and predicts the next state as `inputs + scale * output` (a residual
forecast); `build(config)` gives `lib.train.train_and_evaluate` its model, MSE loss and data.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.blocks import GatedMLP, RMSNorm
from lib.nn.registry import get_mixer
from lib.train.losses import mse_loss

RECURRENCES = ("none", "elman", "gru", "lstm")
VARIANTS = {  # name -> (recurrence, attention)
    "mlp": ("none", False),
    "rnn": ("elman", False),
    "gru": ("gru", False),
    "lstm": ("lstm", False),
    "transformer": ("none", True),
    "gru_attention": ("gru", True),
}


class Elman(nn.Module):
    """Tanh RNN without gates: h_t = tanh(W x_t + U h_{t-1} + b). [b, l, dim] -> [b, l, dim]."""

    dim: int

    @nn.compact
    def __call__(self, x_BxLxD):
        u = self.param("w_hh", nn.initializers.orthogonal(), (self.dim, self.dim))
        xw = nn.Dense(self.dim, name="w_ih")(x_BxLxD)

        def step(h, xw_t):
            h = jnp.tanh(xw_t + h @ u)
            return h, h

        h0 = jnp.zeros((x_BxLxD.shape[0], self.dim), x_BxLxD.dtype)
        _, hs = jax.lax.scan(step, h0, jnp.swapaxes(xw, 0, 1))
        return jnp.swapaxes(hs, 0, 1)


class Residual(nn.Module):
    """x + mixer(norm(x)), then x + GatedMLP(norm(x)); mixer None: the MLP only."""

    dim: int
    mixer: str | None
    mixer_kwargs: Any = None
    mlp_dim: int | None = None

    @nn.compact
    def __call__(self, x):
        if self.mixer == "elman":
            x = x + Elman(self.dim)(RMSNorm()(x))
        elif self.mixer is not None:
            x = x + get_mixer(self.mixer)(dim=self.dim, **dict(self.mixer_kwargs or {}))(
                RMSNorm()(x)
            )
        return x + GatedMLP(self.dim, self.mlp_dim)(RMSNorm()(x))


class Forecaster(nn.Module):
    """Next-step forecaster with recurrence / gating / attention toggles.

    Attributes:
      features: state size d.
      dim, depth, num_heads: width, blocks, attention heads.
      recurrence: one of RECURRENCES.
      attention: add causal attention (alone if recurrence is "none", else after each block).
      output_scale: the residual forecast is inputs + output_scale * output.
      mlp_dim: hidden width of every gated MLP (None: `GatedMLP`'s default, ~8/3 dim); the
        fine knob for matching parameter counts (`matched_width`).
    """

    features: int
    dim: int = 32
    depth: int = 2
    num_heads: int = 4
    recurrence: str = "gru"
    attention: bool = False
    output_scale: float = 1.0
    mlp_dim: int | None = None

    @nn.compact
    def __call__(self, x_BxLxF):
        """[b, l, features] -> next-step predictions [b, l, features]."""
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {self.recurrence!r}")
        h = nn.Dense(self.dim, name="input_proj")(x_BxLxF)
        for _ in range(self.depth):
            if self.recurrence != "none":
                h = Residual(self.dim, self.recurrence, mlp_dim=self.mlp_dim)(h)
            if self.attention:
                h = Residual(
                    self.dim, "attention", {"num_heads": self.num_heads}, mlp_dim=self.mlp_dim
                )(h)
            if self.recurrence == "none" and not self.attention:
                h = Residual(self.dim, None, mlp_dim=self.mlp_dim)(h)
        out = nn.Dense(self.features, kernel_init=nn.initializers.zeros, name="head")(RMSNorm()(h))
        return x_BxLxF + self.output_scale * out


def count_params(
    variant: str, features: int, dim: int, depth: int, num_heads: int, mlp_dim: int | None = None
) -> int:
    """Parameters of `variant` at width `dim` (shapes only: nothing is computed)."""
    recurrence, attention = VARIANTS[variant]
    model = Forecaster(features, dim, depth, num_heads, recurrence, attention, mlp_dim=mlp_dim)
    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 2, features)))
    return sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(shapes))


def default_mlp_dim(dim: int) -> int:
    """`GatedMLP`'s default hidden width: 8/3 dim rounded up to a multiple of 8."""
    return -(-(8 * dim // 3) // 8) * 8


def matched_width(
    variant: str, target_params: int, features: int, depth: int, num_heads: int,
    max_dim: int = 1024,
) -> tuple[int, int]:  # fmt: skip
    """A width `(dim, mlp_dim)` at which `variant` has about `target_params` parameters.

    Coarse, then fine: `dim` is the largest allowed width whose count (with the default MLP)
    does not pass the target (found by bisection: the count grows with the width), where
    allowed means a multiple of `2 * num_heads` for attention variants (whole heads of even
    size, for rotary positions) and any width otherwise; then the gated MLPs' hidden width,
    on which the count depends linearly, is widened to close the gap. The result is within
    one MLP unit's worth of parameters (`3 * dim * blocks`) of the target.

    Args:
      variant: a key of `VARIANTS`.
      target_params: the parameter budget (e.g. another variant's count).
      features, depth, num_heads: the other sizes, as in `Forecaster`.
      max_dim: the largest width tried.

    Returns:
      `(dim, mlp_dim)` for `Forecaster`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
    if target_params <= 0:
        raise ValueError(f"target_params must be positive, got {target_params}")
    step = 2 * num_heads if VARIANTS[variant][1] else 1

    def count(dim, mlp=None):
        return count_params(variant, features, dim, depth, num_heads, mlp)

    if count(step) > target_params:
        raise ValueError(f"{variant} has more than {target_params} parameters at its narrowest")
    lo, hi = 1, max_dim // step
    if count(hi * step) <= target_params:
        raise ValueError(f"{variant} needs a width above {max_dim} for {target_params} parameters")
    while lo < hi:  # last multiple k with count(k * step) <= target
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if count(mid * step) <= target_params else (lo, mid - 1)
    dim = lo * step
    base = default_mlp_dim(dim)
    per_unit = count(dim, base + 1) - count(dim, base)
    return dim, base + max(0, round((target_params - count(dim, base)) / per_unit))


def model_width(config, features: int) -> tuple[int, int | None]:
    """`(dim, mlp_dim)`: `config.model.dim` and the default MLP, or, with
    `config.model.match_params` naming a variant (e.g. "gru"), the width at which this variant
    has as many parameters as that variant has at `config.model.dim` (`matched_width`)."""
    m = config.model
    ref = m.get("match_params", "")
    if not ref:
        return m.dim, None
    if ref not in VARIANTS:
        raise ValueError(f"match_params must be one of {sorted(VARIANTS)}, got {ref!r}")
    target = count_params(ref, features, m.dim, m.depth, m.num_heads)
    return matched_width(m.variant, target, features, m.depth, m.num_heads)


def make_model(config, features: int) -> Forecaster:
    m = config.model
    if m.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {m.variant!r}")
    recurrence, attention = VARIANTS[m.variant]
    dim, mlp_dim = model_width(config, features)
    return Forecaster(
        features, dim, m.depth, m.num_heads, recurrence, attention, m.output_scale, mlp_dim
    )


def loss_fn(params, batch, rng, *, model, train):
    """MSE of the next-step forecast; `persistence_mse` is the copy-the-last-state baseline."""
    del rng, train
    pred = model.apply({"params": params}, batch["inputs"])
    loss, metrics = mse_loss(pred, batch["targets"])
    metrics["persistence_mse"] = jnp.mean(jnp.square(batch["inputs"] - batch["targets"]))
    return loss, metrics


def data_name(config) -> str:
    """The `lib.data` name of `config.data.name` prepared with its `builder_kwargs`: a variant
    stored beside copies with other options (`python -m lib.data prepare <that name>`)."""
    import lib.data

    return lib.data.variant(config.data.name, **config.data.builder_kwargs.to_dict())


def data_info(config) -> dict:
    """The metadata of the config's prepared data set. Never prepares: a missing data set or
    split raises `lib.data.DatasetNotPreparedError` with the exact prepare command."""
    import lib.data

    splits = ("train", "validation", "test")
    return lib.data.check_splits(data_name(config), splits, config.data.data_dir or None)


def build(config) -> dict[str, Any]:
    """Model, loss and data for `lib.train.train_and_evaluate` (see configs/forecast.py)."""
    import lib.data

    d = config.data
    info = data_info(config)
    model = make_model(config, info["input_dim"])

    def loader(split, training):
        return lib.data.load(
            data_name(config), split, batch_size=d.batch_size, seed=config.seed, shuffle=training,
            num_epochs=None if training else 1, data_dir=d.data_dir or None,
            drop_remainder=training,
        )  # fmt: skip

    return {
        "model": model,
        "loss_fn": loss_fn,
        "train_data": loader("train", True),
        "eval_data": lambda: loader("validation", False),
        "test_data": lambda: loader("test", False),
    }
