"""Baseline sequence models (GRU: Cho et al., 2014; LSTM: Hochreiter & Schmidhuber, 1997;
Transformer: Vaswani et al., 2017, pre-norm as in GPT-2) and their task glue.

`build(config)` returns what `launch/train.py` needs: the model, the loss function, the
training iterator, the evaluation and test iterator factories and an end-of-run hook that
writes samples of generated text.
"""

import functools
import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.precision import compute_dtype
from lib.train import losses
from lib.train.sharding import ProcessRows


class RNNLM(nn.Module):
    """Embedding -> stacked GRU or LSTM (Flax's own cells) -> logits.

    Attributes:
      vocab_size: number of tokens.
      dim: width of the embedding and of every recurrent layer.
      num_layers: stacked recurrent layers.
      cell: "gru" or "lstm".
      dropout: dropout rate between layers (training only).
      dtype: computation dtype (None: float32; `jnp.bfloat16` for mixed precision: the
        carries stay float32, as do the parameters, `param_dtype`).
    """

    vocab_size: int
    dim: int = 256
    num_layers: int = 1
    cell: str = "gru"
    dropout: float = 0.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens_BxL, train: bool = False):
        """tokens_BxL: int [b, l] -> logits float32 [b, l, vocab_size]."""
        cells = {"gru": nn.GRUCell, "lstm": nn.OptimizedLSTMCell}
        if self.cell not in cells:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {sorted(cells)}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h_BxLxD = nn.Embed(self.vocab_size, self.dim, **kw)(tokens_BxL)
        for i in range(self.num_layers):
            h_BxLxD = nn.Dropout(self.dropout, deterministic=not train)(h_BxLxD)
            cell = cells[self.cell](features=self.dim, **kw)
            h_BxLxD = nn.RNN(cell, name=f"rnn_{i}")(h_BxLxD)
        h_BxLxD = nn.Dropout(self.dropout, deterministic=not train)(h_BxLxD)
        return nn.Dense(self.vocab_size, **kw)(h_BxLxD).astype(jnp.float32)


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(LN(x)), then x + MLP(LN(x))."""

    dim: int
    num_heads: int
    mlp_ratio: int = 4
    dropout: float = 0.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x_BxLxD, mask, train: bool):
        drop = functools.partial(nn.Dropout, self.dropout, deterministic=not train)
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        h = nn.LayerNorm(**kw)(x_BxLxD)  # statistics in float32 whatever dtype
        h = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, qkv_features=self.dim, force_fp32_for_softmax=True, **kw
        )(h, h, mask=mask, deterministic=True)
        x_BxLxD = x_BxLxD + drop()(h)
        h = nn.LayerNorm(**kw)(x_BxLxD)
        h = nn.Dense(self.mlp_ratio * self.dim, **kw)(h)
        h = nn.Dense(self.dim, **kw)(nn.gelu(h))
        return x_BxLxD + drop()(h)


class TransformerLM(nn.Module):
    """A small causal, pre-norm Transformer language model with learned positions.

    Attributes:
      vocab_size, dim, num_layers, num_heads, dropout: as named.
      max_len: the longest sequence (size of the position table).
      dtype, param_dtype: computation and parameter dtypes (`lib.nn.precision`); logits,
        softmaxes and norm statistics are float32 whatever `dtype`.
    """

    vocab_size: int
    dim: int = 128
    num_layers: int = 4
    num_heads: int = 4
    max_len: int = 256
    dropout: float = 0.0
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, tokens_BxL, train: bool = False):
        """tokens_BxL: int [b, l] with l <= max_len -> logits float32 [b, l, vocab_size]."""
        length = tokens_BxL.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len={self.max_len}")
        kw = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        x = nn.Embed(self.vocab_size, self.dim, **kw)(tokens_BxL)
        pos = self.param(
            "pos_embedding", nn.initializers.normal(0.02), (self.max_len, self.dim),
            self.param_dtype,
        )  # fmt: skip
        x = x + pos[:length].astype(x.dtype)
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        mask = nn.make_causal_mask(tokens_BxL)
        for i in range(self.num_layers):
            x = Block(self.dim, self.num_heads, dropout=self.dropout, name=f"block_{i}", **kw)(
                x, mask, train
            )
        return nn.Dense(self.vocab_size, **kw)(nn.LayerNorm(**kw)(x)).astype(jnp.float32)


def make_model(model_cfg, vocab_size: int, seq_len: int, dtype=None) -> nn.Module:
    """The model named by `model_cfg.kind` ("gru", "lstm" or "transformer"), computing in
    `dtype` (None: float32) with float32 parameters."""
    kind = model_cfg.kind
    if kind in ("gru", "lstm"):
        return RNNLM(
            vocab_size, model_cfg.dim, model_cfg.num_layers, kind, model_cfg.dropout, dtype=dtype
        )
    if kind == "transformer":
        return TransformerLM(
            vocab_size,
            model_cfg.dim,
            model_cfg.num_layers,
            model_cfg.num_heads,
            max_len=seq_len,
            dropout=model_cfg.dropout,
            dtype=dtype,
        )
    raise ValueError(f"unknown model kind {kind!r}; expected gru, lstm or transformer")


def loss_fn(params, batch, rng, *, model, train):
    """Masked next-token cross-entropy; metrics in nats and bits per token (= per char)."""
    logits = model.apply({"params": params}, batch["inputs"], train=train, rngs={"dropout": rng})
    return losses.lm_loss(logits, batch["targets"], batch["mask"])


@functools.partial(jax.jit, static_argnames=("model", "num_new", "window", "temperature"))
def _sample_tokens(params, prompt_BxP, rng, *, model, num_new, window, temperature):
    """Sample `num_new` tokens after the prompt, feeding the model the last `window` tokens."""
    b, p = prompt_BxP.shape
    total = p + num_new
    buf = jnp.zeros((b, total + window), jnp.int32).at[:, window : window + p].set(prompt_BxP)

    def body(t, carry):  # t: the index (in the sequence) of the token to write
        buf, rng = carry
        ctx = jax.lax.dynamic_slice_in_dim(buf, t, window, axis=1)  # tokens t-window..t-1
        logits = model.apply({"params": params}, ctx, train=False)[:, -1]
        rng, sub = jax.random.split(rng)
        nxt = jax.random.categorical(sub, logits / temperature).astype(jnp.int32)
        return buf.at[:, window + t].set(nxt), rng

    buf, _ = jax.lax.fori_loop(p, total, body, (buf, rng))
    return buf[:, window:]


def generate(params, model, prompt_ids, num_new, *, window, temperature=0.8, seed=0):
    """Sample continuations of `prompt_ids` ([b, p] int) with a sliding context window.

    The first positions of the window are padding (token 0) until the text is long enough; the
    models were trained on windows that start anywhere, so this is a mild mismatch only.

    Returns:
      int [b, p + num_new]: the prompts followed by the sampled tokens.
    """
    prompt = jnp.asarray(prompt_ids, jnp.int32)
    rng = jax.random.PRNGKey(seed)
    return np.asarray(
        _sample_tokens(
            params, prompt, rng, model=model, num_new=num_new, window=window,
            temperature=temperature,
        )
    )  # fmt: skip


class Rechunk:
    """Split every stored window of length `k * seq_len` into `k` sequences of `seq_len`.

    Forwards `get_state` / `set_state`, so the loop can still checkpoint the position.
    """

    def __init__(self, it, seq_len: int):
        self.it, self.seq_len = it, seq_len

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.it)
        length = batch["inputs"].shape[1]
        if length == self.seq_len:
            return batch
        if length % self.seq_len:
            raise ValueError(f"stored length {length} is not a multiple of seq_len={self.seq_len}")
        return {k: v.reshape(-1, self.seq_len, *v.shape[2:]) for k, v in batch.items()}

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state):
        self.it.set_state(state)


def pad_batches(it, batch_size: int):
    """Pad a last, smaller batch to `batch_size` with masked-out rows (mask 0), so evaluation
    covers every example and batches still divide over the devices."""
    for batch in it:
        n = batch["inputs"].shape[0]
        if n < batch_size:
            batch = {
                k: np.concatenate([v, np.zeros((batch_size - n, *v.shape[1:]), v.dtype)])
                for k, v in batch.items()
            }
        yield batch


def build(config) -> dict:
    """Model, loss and data for `config` (see configs/shakespeare.py and configs/copying.py).

    Returns:
      A dict with `model`, `loss_fn`, `train_data`, `eval_data`, `test_data` and `on_end`
      (writes `samples.txt` for text data sets), the keyword arguments of
      `lib.train.loop.train_and_evaluate`.
    """
    import lib.data

    d = config.data
    data_dir = d.data_dir or None
    meta = lib.data.info(d.name, data_dir)
    stored_len = int(meta["seq_len"])
    seq_len = d.seq_len or stored_len
    per_window = max(stored_len // seq_len, 1)
    if d.batch_size % per_window:
        raise ValueError(
            f"data.batch_size must be a multiple of {per_window} (= {stored_len}/{seq_len})"
        )
    windows = d.batch_size // per_window
    # config.train.compute_dtype: "bfloat16" computes in bf16, params/optimizer stay float32
    dtype = compute_dtype(config.train.get("compute_dtype", "float32"))
    model = make_model(config.model, int(meta["vocab_size"]), seq_len, dtype=dtype)

    def load(split, **kw):
        # Every process reads the global stream and keeps its own rows (ProcessRows), so a
        # run on many hosts sees the batches of a one-process run and resumes from one state.
        return lib.data.load(
            d.name, split, batch_size=windows, seed=config.seed, data_dir=data_dir,
            shard_index=0, shard_count=1, **kw,
        )  # fmt: skip

    def finite(split):
        it = load(split, shuffle=False, num_epochs=1, drop_remainder=False)
        return ProcessRows(Rechunk(pad_batches(it, windows), seq_len))

    def on_end(state, workdir):
        if "vocab" not in meta or not d.num_samples:
            return {}
        return write_samples(state.params, model, meta["vocab"], workdir, config, seq_len)

    return {
        "model": model,
        "loss_fn": loss_fn,
        "train_data": ProcessRows(Rechunk(load("train", shuffle=True), seq_len)),
        "eval_data": lambda: finite("validation"),
        "test_data": (lambda: finite("test")) if d.evaluate_test else None,
        "on_end": on_end,
    }


def write_samples(params, model, vocab: str, workdir: str, config, window: int) -> dict:
    """Generate `config.data.num_samples` texts from the prompt; write `<workdir>/samples.txt`."""
    d = config.data
    char_to_id = {c: i for i, c in enumerate(vocab)}
    prompt = [char_to_id.get(c, 0) for c in d.sample_prompt] or [0]
    prompts = np.tile(np.asarray(prompt, np.int32), (d.num_samples, 1))
    params = jax.device_get(params)
    ids = generate(params, model, prompts, d.sample_length, window=window, seed=config.seed)
    texts = ["".join(vocab[i] for i in row) for row in ids]
    path = os.path.join(workdir, "samples.txt")
    if jax.process_index() == 0:
        with open(path, "w") as f:
            for i, text in enumerate(texts):
                f.write(f"=== sample {i} (temperature 0.8) ===\n{text}\n\n")
    return {"samples_file": path, "sample_0": texts[0]}
