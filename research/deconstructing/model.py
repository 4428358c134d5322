"""Deconstructing recurrence, attention and gating (Heidenreich, Vlachas & Koumoutsakos 2024).

One next-step forecaster whose blocks switch three components on or off as hyper-parameters:

- recurrence: "none" (per-time-step MLP only), "elman" (tanh RNN: recurrence without gates),
  "gru" (recurrence + gating), "lstm" (recurrence + gating + a separate cell memory);
- attention: False / True (causal softmax attention, `lib.nn.attention`), on its own when
  recurrence is "none" (a Transformer) or after each recurrent block (a hybrid).

Every block is pre-norm with a residual and a gated MLP (`lib.nn.blocks`). The model reads
`inputs` float [b, l, d] and predicts the next state as `inputs + scale * output` (a residual
forecast); `build(config)` gives `lib.train.train_and_evaluate` its model, MSE loss and data.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

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

    @nn.compact
    def __call__(self, x):
        if self.mixer == "elman":
            x = x + Elman(self.dim)(RMSNorm()(x))
        elif self.mixer is not None:
            x = x + get_mixer(self.mixer)(dim=self.dim, **dict(self.mixer_kwargs or {}))(
                RMSNorm()(x)
            )
        return x + GatedMLP(self.dim)(RMSNorm()(x))


class Forecaster(nn.Module):
    """Next-step forecaster with recurrence / gating / attention toggles.

    Attributes:
      features: state size d.
      dim, depth, num_heads: width, blocks, attention heads.
      recurrence: one of RECURRENCES.
      attention: add causal attention (alone if recurrence is "none", else after each block).
      output_scale: the residual forecast is inputs + output_scale * output.
    """

    features: int
    dim: int = 32
    depth: int = 2
    num_heads: int = 4
    recurrence: str = "gru"
    attention: bool = False
    output_scale: float = 1.0

    @nn.compact
    def __call__(self, x_BxLxF):
        """[b, l, features] -> next-step predictions [b, l, features]."""
        if self.recurrence not in RECURRENCES:
            raise ValueError(f"recurrence must be one of {RECURRENCES}, got {self.recurrence!r}")
        h = nn.Dense(self.dim, name="input_proj")(x_BxLxF)
        for _ in range(self.depth):
            if self.recurrence != "none":
                h = Residual(self.dim, self.recurrence)(h)
            if self.attention:
                h = Residual(self.dim, "attention", {"num_heads": self.num_heads})(h)
            if self.recurrence == "none" and not self.attention:
                h = Residual(self.dim, None)(h)
        out = nn.Dense(self.features, kernel_init=nn.initializers.zeros, name="head")(RMSNorm()(h))
        return x_BxLxF + self.output_scale * out


def make_model(config, features: int) -> Forecaster:
    m = config.model
    if m.variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {m.variant!r}")
    recurrence, attention = VARIANTS[m.variant]
    return Forecaster(features, m.dim, m.depth, m.num_heads, recurrence, attention, m.output_scale)


def loss_fn(params, batch, rng, *, model, train):
    """MSE of the next-step forecast; `persistence_mse` is the copy-the-last-state baseline."""
    del rng, train
    pred = model.apply({"params": params}, batch["inputs"])
    loss, metrics = mse_loss(pred, batch["targets"])
    metrics["persistence_mse"] = jnp.mean(jnp.square(batch["inputs"] - batch["targets"]))
    return loss, metrics


def prepare(config) -> dict:
    """Prepare `config.data.name` with its `builder_kwargs` (rebuilt if they differ); its info."""
    import lib.data

    d = config.data
    kwargs, data_dir = dict(d.builder_kwargs), d.data_dir or None
    prepared = lib.data.registry.is_prepared(d.name, data_dir)
    if not prepared or any(
        lib.data.info(d.name, data_dir).get("config", {}).get(k) != v for k, v in kwargs.items()
    ):
        lib.data.prepare(d.name, data_dir, overwrite=prepared, **kwargs)
    return lib.data.info(d.name, data_dir)


def build(config) -> dict[str, Any]:
    """Model, loss and data for `lib.train.train_and_evaluate` (see configs/forecast.py)."""
    import lib.data

    d = config.data
    info = prepare(config)
    model = make_model(config, info["input_dim"])

    def loader(split, training):
        return lib.data.load(
            d.name, split, batch_size=d.batch_size, seed=config.seed, shuffle=training,
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
