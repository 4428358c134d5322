"""Gated Linear Attention Transformers with Hardware-Efficient Training (Yang et al., 2023),
small scale.

`build(config)` gives one language model (`config.model.mixer`: `gla`, or a baseline:
`retnet` with a fixed per-head decay, softmax `attention`, `mamba`) and its data to
`lib.train.loop.train_and_evaluate`: MQAR recall drawn in memory from `lib.data`'s `mqar`
generator, or the prepared `shakespeare_char` (models at a matched parameter count with
`config.model.target_params`). The comparisons of the README are studies over
`config.study.mixers` in `launch/gla.py`. `form_outputs` gives one GLA language model's
logits from its three forms (recurrent scan, chunked, and token-by-token decoding) so tests
and users can check they agree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lib.data import stream
from lib.nn import sizing
from lib.train import losses


def build(config) -> dict:
    """Model, loss and data for `config` (see configs/*.py): the keyword arguments of
    `lib.train.loop.train_and_evaluate`; `on_end` adds `params` and `dim` to the final metrics."""
    d, m = config.data, config.model
    task = stream.sequence_task(
        d.task, options=d.options, batch_size=d.batch_size, seed=config.seed,
        eval_batches=d.eval_batches, test_batches=d.test_batches, seq_len=d.seq_len,
        data_dir=d.data_dir or None,
    )  # fmt: skip
    model, dim = sizing.sized_language_model(
        m.mixer, m.depth, task["vocab_size"], dict(m.mixer_kwargs.get(m.mixer, {})),
        dim=m.dim, target_params=m.target_params,
    )  # fmt: skip

    def on_end(state, workdir):
        return {"params": sizing.count_params(model), "dim": dim}

    return dict(
        model=model,
        loss_fn=losses.lm_loss_fn,
        train_data=task["train_data"],
        eval_data=task["eval_data"],
        test_data=task["test_data"],
        on_end=on_end,
    )


def gla_model(dim: int, depth: int, vocab: int, *, method: str, chunk_size: int = 16, **kw):
    """A GLA language `SequenceModel` whose mixers all use `lib.ops.linear_attention.gla`
    with `method` ("ref": the recurrent `lax.scan`, "chunked": chunkwise matmuls)."""
    mixer_kwargs = {"method": method, "chunk_size": chunk_size, **kw}
    return sizing.language_model("gla", dim, depth, vocab, mixer_kwargs)


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
