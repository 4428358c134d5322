"""Universal Transformer (Dehghani et al. 2019): one shared block applied over depth, with ACT halting.

The model is decoder-only (causal) for `question SEP answer EOS` sequences. At each of up to
`max_steps` depth steps every position adds a timestep embedding and passes through the same
pre-norm block (attention with RoPE + MLP from `lib.nn.blocks`). With `act=True`, each position
halts on its own by Graves' adaptive computation time: a halting unit gives p_t; a position
runs while the cumulative p stays below 1 - eps, and its output is the p-weighted mean of its
states, with the remainder R on the last step. The ponder cost N + R (steps taken plus
remainder) is added to the loss with weight `ponder_weight`.

`build(config)` returns the pieces `launch/train.py` and `lib.train.train_and_evaluate` take.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.blocks import PreNormBlock, RMSNorm
from lib.nn.sequence_model import SequenceModel
from lib.train.losses import lm_loss


def act_update(p_BxL, halt_BxL, remainder_BxL, updates_BxL, threshold):
    """One ACT bookkeeping step (Graves 2016, as in the UT paper's Algorithm).

    Args:
      p_BxL: this step's halting probabilities in (0, 1).
      halt_BxL: cumulative halting probability so far.
      remainder_BxL, updates_BxL: remainders and step counts so far.
      threshold: 1 - eps.

    Returns:
      (weight_BxL, halt_BxL, remainder_BxL, updates_BxL): the weight of this step's state in
      the output (0 once a position has halted), and the updated accumulators.
    """
    running = (halt_BxL < 1.0).astype(p_BxL.dtype)
    new_halted = (halt_BxL + p_BxL * running > threshold).astype(p_BxL.dtype) * running
    running = (halt_BxL + p_BxL * running <= threshold).astype(p_BxL.dtype) * running
    halt_BxL = halt_BxL + p_BxL * running
    remainder_BxL = remainder_BxL + new_halted * (1.0 - halt_BxL)
    halt_BxL = halt_BxL + new_halted * remainder_BxL
    updates_BxL = updates_BxL + running + new_halted
    weight_BxL = p_BxL * running + new_halted * remainder_BxL
    return weight_BxL, halt_BxL, remainder_BxL, updates_BxL


class UniversalTransformer(nn.Module):
    """Causal Universal Transformer language model over token ids.

    Attributes:
      vocab_size, dim, num_heads: sizes.
      max_steps: depth steps (the shared block is applied at most this many times).
      act: per-position adaptive halting; False applies all `max_steps` steps.
      act_eps: halting threshold is 1 - act_eps.
      halt_bias_init: initial bias of the halting unit (positive: halt early).
    """

    vocab_size: int
    dim: int = 128
    num_heads: int = 4
    max_steps: int = 6
    act: bool = True
    act_eps: float = 0.01
    halt_bias_init: float = 1.0

    @nn.compact
    def __call__(self, tokens_BxL):
        """Returns `(logits [b, l, vocab], aux)` with aux `ponder` [b, l] and `steps` [b, l]."""
        x = nn.Embed(self.vocab_size, self.dim, name="embed")(tokens_BxL)
        x = x * jnp.sqrt(self.dim).astype(x.dtype)
        step_emb = self.param(
            "step_emb", nn.initializers.normal(0.02), (self.max_steps, self.dim), jnp.float32
        )
        block = PreNormBlock(self.dim, "attention", {"num_heads": self.num_heads}, name="block")
        halting = nn.Dense(
            1, bias_init=nn.initializers.constant(self.halt_bias_init), name="halting"
        )
        b, length = tokens_BxL.shape
        halt = jnp.zeros((b, length), jnp.float32)
        remainder = jnp.zeros_like(halt)
        updates = jnp.zeros_like(halt)
        out = jnp.zeros_like(x)
        state = x
        for t in range(self.max_steps):
            state = state + step_emb[t].astype(x.dtype)
            if self.act:
                p = jax.nn.sigmoid(halting(state)[..., 0].astype(jnp.float32))
                if t == self.max_steps - 1:  # the last step halts every position still running
                    p = jnp.ones_like(p)
                w, halt, remainder, updates = act_update(
                    p, halt, remainder, updates, 1.0 - self.act_eps
                )
                state = block(state)
                out = out + w[..., None].astype(x.dtype) * state
            else:
                state = block(state)
        if not self.act:
            out = state
            updates = jnp.full((b, length), float(self.max_steps))
        h = RMSNorm(name="final_norm")(out)
        logits = nn.Dense(self.vocab_size, name="head")(h)
        return logits, {"ponder": updates + remainder, "steps": updates}


def sequence_accuracy(logits_BxLxV, targets_BxL, mask_BxL):
    """Fraction of sequences whose every unmasked target is the argmax (teacher forcing)."""
    wrong = (jnp.argmax(logits_BxLxV, -1) != targets_BxL) & (mask_BxL > 0)
    return jnp.mean(1.0 - jnp.any(wrong, axis=-1).astype(jnp.float32))


def make_loss_fn(ponder_weight: float):
    """`loss_fn(params, batch, rng, *, model, train)` for lib.train: answer-token CE + ponder."""

    def loss_fn(params, batch, rng, *, model, train):
        del rng, train
        out = model.apply({"params": params}, batch["inputs"])
        logits, aux = out if isinstance(out, tuple) else (out, None)
        loss, metrics = lm_loss(logits, batch["targets"], batch["mask"])
        metrics["sequence_accuracy"] = sequence_accuracy(logits, batch["targets"], batch["mask"])
        if aux is not None:
            tokens = jnp.maximum(jnp.sum(batch["mask"]), 1.0)
            ponder = jnp.sum(aux["ponder"] * batch["mask"]) / tokens
            metrics["ponder"] = ponder
            metrics["mean_steps"] = jnp.sum(aux["steps"] * batch["mask"]) / tokens
            loss = loss + ponder_weight * ponder
        return loss, metrics

    return loss_fn


def make_model(config, vocab_size: int):
    """The UT or the baseline Transformer (same width; `max_steps` unshared layers)."""
    m = config.model
    if m.kind == "ut":
        return UniversalTransformer(
            vocab_size, m.dim, m.num_heads, m.max_steps, act=m.act, act_eps=m.act_eps
        )
    if m.kind == "transformer":
        return SequenceModel(
            dim=m.dim,
            depth=m.max_steps,
            mixer="attention",
            mixer_kwargs={"num_heads": m.num_heads},
            vocab_size=vocab_size,
        )
    raise ValueError(f"config.model.kind must be 'ut' or 'transformer', got {m.kind!r}")


def build(config) -> dict[str, Any]:
    """Model, loss and data for `lib.train.train_and_evaluate` from a config (see configs/)."""
    import lib.data

    d = config.data
    # The data set with the config's options: a variant stored beside copies with other
    # options. Never prepared here: missing data or splits raise with the prepare command.
    name = lib.data.variant(d.name, **d.builder_kwargs.to_dict())
    info = lib.data.check_splits(name, ("train", "validation", "test"), d.data_dir or None)
    model = make_model(config, info["vocab_size"])

    def loader(split, training):
        return lib.data.load(
            name, split, batch_size=d.batch_size, seed=config.seed, shuffle=training,
            num_epochs=None if training else 1, data_dir=d.data_dir or None,
            drop_remainder=training,
        )  # fmt: skip

    def on_end(state, workdir=None):
        """The per-position halting depth on the test split (UT with ACT only)."""
        if config.model.kind != "ut" or not config.model.act:
            return {}
        profile = halting_by_position(model, state.params, loader("test", False))
        return {"test_halting_by_position": [round(x, 3) for x in profile]}

    return {
        "model": model,
        "on_end": on_end,
        "loss_fn": make_loss_fn(config.model.ponder_weight if config.model.kind == "ut" else 0.0),
        "train_data": loader("train", True),
        "eval_data": lambda: loader("validation", False),
        "test_data": lambda: loader("test", False),
    }


def halting_by_position(model, params, batches, pad_id: int = 0):
    """Mean ACT steps at each absolute position over non-padding tokens of `batches`.

    Returns a list (one float per position; NaN where no sequence reaches that position).
    """
    apply = jax.jit(lambda p, x: model.apply({"params": p}, x)[1]["steps"])
    total, count = None, None
    for batch in batches:
        steps = np.asarray(apply(params, batch["inputs"]))
        real = (np.asarray(batch["inputs"]) != pad_id).astype(np.float64)
        s, c = (steps * real).sum(0), real.sum(0)
        if total is None:
            total, count = s, c
        else:
            n = max(len(total), len(s))
            total = np.pad(total, (0, n - len(total))) + np.pad(s, (0, n - len(s)))
            count = np.pad(count, (0, n - len(count))) + np.pad(c, (0, n - len(c)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).tolist()
