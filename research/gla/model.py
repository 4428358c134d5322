"""Gated Linear Attention Transformers with Hardware-Efficient Training (Yang et al., 2023),
small scale.

The experiments reuse the Mamba project's harness (`research.mamba.harness`, `research.mamba.model`):
`run(config)` runs MQAR recall ("synthetic") or character-level Shakespeare ("lm") for GLA and
its baselines (`retnet`: fixed per-head decay; `attention`: softmax; `mamba`). `form_outputs`
gives one GLA language model's logits from its three forms (recurrent scan, chunked, and
token-by-token decoding) so tests and users can check they agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from research.mamba import harness
from research.mamba.model import EXPERIMENTS, TABLE_KEYS, run_lm, run_synthetic  # noqa: F401

GLA_EXPERIMENTS = ("synthetic", "lm")


def run(config) -> list[dict]:
    """Run `config.experiment` ("synthetic" for MQAR or "lm" for Shakespeare)."""
    if config.experiment not in GLA_EXPERIMENTS:
        raise ValueError(f"unknown experiment {config.experiment!r}; expected {GLA_EXPERIMENTS}")
    return EXPERIMENTS[config.experiment](config)


def gla_model(dim: int, depth: int, vocab: int, *, method: str, chunk_size: int = 16, **kw):
    """A GLA language `SequenceModel` whose mixers all use `lib.ops.linear_attention.gla`
    with `method` ("ref": the recurrent `lax.scan`, "chunked": chunkwise matmuls)."""
    mixer_kwargs = {"method": method, "chunk_size": chunk_size, **kw}
    return harness.make_model("gla", dim, depth, vocab, mixer_kwargs)


FORMS = ("recurrent", "chunked", "step")


def form_outputs(
    tokens_BxL, *, dim=32, depth=2, vocab=16, chunk_size=16, seed=0, forms=FORMS, **kw
):
    """Logits of one randomly initialised GLA LM computed in up to three forms.

    Args:
      tokens_BxL: int tokens `[b, l]`.
      dim, depth, vocab, chunk_size, **kw: the model (`kw` goes to the GLA mixer).
      seed: parameter seed.
      forms: which of `FORMS` to compute (each one is a separate compilation).
    Returns:
      dict `recurrent`, `chunked`, `step` (those asked for) -> float32 logits
      `[b, l, vocab]`: the full sequence with the recurrent scan, with the chunked form, and
      decoded token by token from the zero state with `SequenceModel.step`.
    """
    unknown = set(forms) - set(FORMS)
    if unknown:
        raise ValueError(f"unknown forms {sorted(unknown)}; expected a subset of {FORMS}")
    recurrent = gla_model(dim, depth, vocab, method="ref", chunk_size=chunk_size, **kw)
    chunked = gla_model(dim, depth, vocab, method="chunked", chunk_size=chunk_size, **kw)
    params = chunked.init(jax.random.key(seed), tokens_BxL)

    def decode(params, tokens):
        state = recurrent.apply(params, tokens.shape[0], method="init_state")
        step = lambda s, t: recurrent.apply(params, s, t, method="step")
        return jax.lax.scan(step, state, tokens.T)[1].transpose(1, 0, 2)

    compute = {
        "recurrent": lambda: jax.jit(recurrent.apply)(params, tokens_BxL),
        "chunked": lambda: jax.jit(chunked.apply)(params, tokens_BxL),
        "step": lambda: jax.jit(decode)(params, jnp.asarray(tokens_BxL, jnp.int32)),
    }
    return {form: compute[form]() for form in forms}
