"""Small-scale experiment harness for Mamba (Gu & Dao, 2023) and GLA (Yang et al., 2023):
task batches from `lib.data`, `SequenceModel`s of any registered mixer matched in size, a
jitted AdamW fit and masked evaluation.

Synthetic tasks (selective copying, induction heads, MQAR, copying memory) are drawn in
memory from the `lib.data` builders' own `example` generators (the same examples `lib.data.prepare` would
store), so the experiments need no preparation step; Shakespeare comes from the prepared
`shakespeare_char` set (`python -m lib.data prepare shakespeare_char`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
import optax

import lib.nn.all_mixers  # noqa: F401  (registers every mixer)
from lib.data.copying import Copying
from lib.data.synthetic import InductionHeads, Mqar, SelectiveCopying
from lib.nn.sequence_model import SequenceModel
from lib.train import losses

BUILDERS = {
    "selective_copying": SelectiveCopying,
    "induction_heads": InductionHeads,
    "mqar": Mqar,
    "copying": Copying,
}

# Mixers that carry their own MLP-free block design in the papers (Mamba has no MLP).
NO_MLP_MIXERS = ("mamba", "s4d")


def task_builder(name: str, **options):
    """The `lib.data` builder of a synthetic task, configured but not prepared.

    Args:
      name: "selective_copying", "induction_heads", "mqar" or "copying".
      **options: the builder's options (e.g. `seq_len=64`), see its `DEFAULTS`.
    """
    if name not in BUILDERS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(BUILDERS)}")
    return BUILDERS[name](data_dir=tempfile.gettempdir(), **options)


def vocab_size(builder) -> int:
    """Vocabulary size of a builder's task (its metadata's `vocab_size`)."""
    return int(builder._metadata()["vocab_size"])


def synthetic_batches(builder, split: str, batch_size: int, seed: int) -> Iterator[dict]:
    """Endless numpy batches `{"inputs", "targets", "mask"}` `[b, l]` of a task builder."""
    rng = np.random.default_rng([seed, ["train", "validation", "test"].index(split)])
    while True:
        exs = [builder.example(rng, split) for _ in range(batch_size)]
        yield {k: np.stack([e[k] for e in exs]) for k in exs[0]}


def shakespeare_batches(split: str, batch_size: int, seq_len: int, seed: int) -> Iterator[dict]:
    """Endless character batches of `shakespeare_char`, cut to `seq_len` (<= 256)."""
    import lib.data

    stored = int(lib.data.info("shakespeare_char")["seq_len"])
    if stored % seq_len:
        raise ValueError(f"seq_len must divide the stored length {stored}, got {seq_len}")
    per = stored // seq_len
    it = lib.data.load("shakespeare_char", split, batch_size=max(batch_size // per, 1), seed=seed)
    for batch in it:
        yield {k: v.reshape(-1, seq_len, *v.shape[2:])[:batch_size] for k, v in batch.items()}


def make_model(mixer: str, dim: int, depth: int, vocab: int, mixer_kwargs=None):
    """A language `SequenceModel`; Mamba and S4D blocks have no MLP (as in Mamba), the others
    use the default gated MLP."""
    mlp = 0 if mixer in NO_MLP_MIXERS else None
    return SequenceModel(
        dim=dim,
        depth=depth,
        mixer=mixer,
        mixer_kwargs=dict(mixer_kwargs or {}),
        vocab_size=vocab,
        mlp_hidden_dim=mlp,
    )


def count_params(model, length: int = 8) -> int:
    """Number of parameters of `model` (by shape only; nothing is computed)."""
    x = jnp.zeros((1, length), jnp.int32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), x)
    return int(sum(np.prod(s.shape) for s in jax.tree.leaves(shapes)))


def dim_for_params(mixer, target, depth, vocab, mixer_kwargs=None, multiple=8) -> int:
    """The width (a multiple of `multiple`) whose model has the parameter count nearest
    `target`: models compared "at equal parameters" use it."""
    best, best_gap = multiple, None
    for dim in range(multiple, 1025, multiple):
        n = count_params(make_model(mixer, dim, depth, vocab, mixer_kwargs))
        gap = abs(n - target)
        if best_gap is None or gap < best_gap:
            best, best_gap = dim, gap
        if n > target:
            break
    return best


def _loss(params, model, batch):
    logits = model.apply(params, batch["inputs"])
    return losses.lm_loss(logits, batch["targets"], batch["mask"])


def fit(
    model,
    batches,
    *,
    steps,
    learning_rate=3e-3,
    weight_decay=0.1,
    seed=0,
    clip=1.0,
    init_params=None,
):
    """Train `model` with AdamW (linear warmup, cosine decay) on `steps` batches.

    Args:
      model: a `SequenceModel`.
      batches: iterator of numpy batches `{"inputs", "targets", "mask"}`.
      steps: number of updates.
      init_params: start from these variables (e.g. a shorter-length run's) instead of
        `model.init` (a fresh optimizer state either way).
    Returns:
      `(params, info)`: trained variables and `{"train_loss": last 10 steps' mean,
      "seconds": wall time, "params": count}`.
    """
    first = next(batches)
    params = init_params or model.init(jax.random.key(seed), jnp.asarray(first["inputs"]))
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, learning_rate, max(steps // 10, 1), max(steps, 2), learning_rate * 0.1
    )
    opt = optax.chain(
        optax.clip_by_global_norm(clip), optax.adamw(schedule, weight_decay=weight_decay)
    )
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state, batch):
        (loss, _), grads = jax.value_and_grad(_loss, has_aux=True)(params, model, batch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start, recent, batch = time.time(), [], first
    for i in range(steps):
        params, opt_state, loss = step(params, opt_state, batch)
        recent = (recent + [float(loss)])[-10:] if i >= steps - 10 else recent
        if i + 1 < steps:
            batch = next(batches)
    n = int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
    info = {"train_loss": float(np.mean(recent)), "seconds": time.time() - start, "params": n}
    return params, info


def evaluate(model, params, batches, num_batches: int) -> dict:
    """Masked loss (nats), bits per token and accuracy over `num_batches` batches."""
    fn = jax.jit(lambda p, b: _loss(p, model, b)[1])
    tot = {"loss": 0.0, "accuracy": 0.0, "count": 0.0}
    for _ in range(num_batches):
        m = fn(params, next(batches))
        c = float(m["count"])
        tot["loss"] += float(m["loss"]) * c
        tot["accuracy"] += float(m["accuracy"]) * c
        tot["count"] += c
    n = max(tot["count"], 1.0)
    loss = tot["loss"] / n
    return {"loss": loss, "bits_per_token": loss / np.log(2), "accuracy": tot["accuracy"] / n}


def train_and_eval(model, train, evals: dict, *, steps, eval_batches, **fit_kwargs) -> dict:
    """`fit`, then `evaluate` on each named iterator of `evals`; a flat dict of results."""
    params, info = fit(model, train, steps=steps, **fit_kwargs)
    out = dict(info)
    for name, it in evals.items():
        for k, v in evaluate(model, params, it, eval_batches).items():
            out[f"{name}_{k}"] = v
    return out
