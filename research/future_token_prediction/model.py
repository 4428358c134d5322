"""Future Token Prediction (Walker, 2024): a causal Transformer encoder whose top-layer
embedding at each position is projected to a short pseudo-sequence; a small Transformer decoder
cross-attends to it and predicts the next N tokens autoregressively (teacher forcing in
training). The GPT baseline is the same encoder with a linear next-token head.

Shapes: `B` batch, `L` positions, `D` encoder width, `P` pseudo-sequence length, `N` future
tokens predicted per position, `E` decoder width, `V` vocabulary. Token inputs are int `[B, L]`
or, for gradient tests, one-hot floats `[B, L, V]` (the embedding is then a matmul).

`build(config)` gives `lib.train.loop.train_and_evaluate` its model, loss and data
(configs/shakespeare.py); evaluation adds the smoothness metrics of `smoothness.py`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

import lib.nn.attention.mixers  # noqa: F401  (registers the "attention" mixer)
from lib.nn.blocks import GatedMLP, PreNormBlock, RMSNorm
from lib.nn.registry import get_mixer
from lib.ops.attention.softmax import attention_ref
from lib.train import losses
from research.future_token_prediction import smoothness


def embed_tokens(embed: nn.Embed, inputs):
    """`embed(inputs)` for int tokens `[..]`; `inputs @ table` for one-hot floats `[.., V]`."""
    if jnp.issubdtype(inputs.dtype, jnp.integer):
        return embed(inputs)
    if inputs.shape[-1] != embed.num_embeddings:
        raise ValueError(
            f"one-hot inputs need {embed.num_embeddings} classes, got shape {inputs.shape}"
        )
    return jnp.einsum("...v,vd->...d", inputs, embed.embedding)


class Encoder(nn.Module):
    """Causal Transformer: embedding, `depth` pre-norm attention blocks (RoPE, SwiGLU), RMSNorm.

    Returns the top-layer embedding `h_BxLxD` (the final norm's output), the vector whose
    smoothness along the text the paper measures.
    """

    vocab_size: int
    dim: int
    depth: int
    num_heads: int = 4

    def setup(self):
        self.embed = nn.Embed(self.vocab_size, self.dim, name="embed")
        kw = {"num_heads": self.num_heads, "max_len": 2048}
        self.blocks = [
            PreNormBlock(self.dim, "attention", kw, name=f"block_{i}") for i in range(self.depth)
        ]
        self.final_norm = RMSNorm()

    def __call__(self, inputs):
        """int `[B, L]` or one-hot `[B, L, V]` -> `h_BxLxD`."""
        if inputs.ndim not in (2, 3):
            raise ValueError(
                f"inputs must be [B, L] tokens or [B, L, V] one-hots, got {inputs.shape}"
            )
        x = embed_tokens(self.embed, inputs)
        for blk in self.blocks:
            x = blk(x)
        return self.final_norm(x)


class GPT(nn.Module):
    """The baseline: `encoder` then a linear next-token head."""

    encoder: Encoder

    @nn.compact
    def __call__(self, inputs, return_embeddings: bool = False):
        """-> next-token logits `[B, L, V]` (and `h_BxLxD` with `return_embeddings`)."""
        h = self.encoder(inputs)
        logits = nn.Dense(self.encoder.vocab_size, name="head")(h)
        return (logits, h) if return_embeddings else logits


class CrossAttention(nn.Module):
    """Multi-head softmax attention of queries `[M, N, E]` to a memory `[M, P, E]` (no mask)."""

    dim: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, x_MxNxE, memory_MxPxE):
        hd = self.dim // self.num_heads
        dense = lambda name: nn.DenseGeneral((self.num_heads, hd), use_bias=False, name=name)
        q, k, v = dense("q")(x_MxNxE), dense("k")(memory_MxPxE), dense("v")(memory_MxPxE)
        o = attention_ref(q, k, v)
        return nn.DenseGeneral(self.dim, axis=(-2, -1), use_bias=False, name="o")(o)


class DecoderBlock(nn.Module):
    """Pre-norm: causal self-attention over the N future slots, cross-attention to the
    pseudo-sequence, SwiGLU MLP; each a residual branch."""

    dim: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, x_MxNxE, memory_MxPxE):
        self_attn = get_mixer("attention")(dim=self.dim, num_heads=self.num_heads, max_len=64)
        x = x_MxNxE + self_attn(RMSNorm(name="self_norm")(x_MxNxE))
        x = x + CrossAttention(self.dim, self.num_heads)(
            RMSNorm(name="cross_norm")(x), memory_MxPxE
        )
        return x + GatedMLP(self.dim)(RMSNorm(name="mlp_norm")(x))


class FTPDecoder(nn.Module):
    """Small Transformer decoder: teacher tokens `[M, N]` (index `vocab_size` is BOS) or their
    one-hots `[M, N, V + 1]`, and a memory `[M, P, E]` -> logits `[M, N, V]`."""

    vocab_size: int
    dim: int
    depth: int = 1
    num_heads: int = 4

    @nn.compact
    def __call__(self, teacher, memory_MxPxE):
        x = embed_tokens(nn.Embed(self.vocab_size + 1, self.dim, name="embed"), teacher)
        for i in range(self.depth):
            x = DecoderBlock(self.dim, self.num_heads, name=f"block_{i}")(x, memory_MxPxE)
        return nn.Dense(self.vocab_size, name="head")(RMSNorm(name="final_norm")(x))


def teacher_inputs(inputs, n_future: int, bos: int):
    """Decoder inputs under teacher forcing: slot `j` of position `t` holds BOS for `j = 0` and
    `inputs[t + j]` for `j >= 1` (BOS past the end, where the targets are masked anyway).

    Args:
      inputs: int `[B, L]` or one-hot `[B, L, V]` (then BOS is the extra class `V`).
    Returns:
      int `[B, L, N]` or one-hot `[B, L, N, V + 1]`.
    """
    length = inputs.shape[1]
    if jnp.issubdtype(inputs.dtype, jnp.integer):
        padded = jnp.pad(inputs, ((0, 0), (0, n_future - 1)), constant_values=bos)
        bos_slot = jnp.full_like(inputs, bos)
    else:
        x = jnp.pad(inputs, ((0, 0), (0, 0), (0, 1)))  # one more class: BOS
        bos_vec = jax.nn.one_hot(bos, bos + 1, dtype=inputs.dtype)
        tail = jnp.broadcast_to(bos_vec, (x.shape[0], n_future - 1, bos + 1))
        padded = jnp.concatenate([x, tail], axis=1)
        bos_slot = jnp.broadcast_to(bos_vec, x.shape)
    slots = [bos_slot] + [padded[:, j : j + length] for j in range(1, n_future)]
    return jnp.stack(slots, axis=2)


class FTP(nn.Module):
    """Future Token Prediction: `encoder` -> top-layer `h_t` -> linear map to a pseudo-sequence
    of `pseudo_len` vectors of the decoder's width -> `decoder` predicts tokens t+1 .. t+N.

    `__call__` teacher-forces: slot `j` of position `t` predicts token `t + 1 + j` from the
    pseudo-sequence of `h_t` and the true tokens `t + 1 .. t + j`; so it depends on tokens
    `<= t + j` only (slot 0, the next-token prediction, on tokens `<= t`).
    """

    encoder: Encoder
    decoder: FTPDecoder
    n_future: int = 4
    pseudo_len: int = 4

    def setup(self):
        if self.n_future < 1 or self.pseudo_len < 1:
            raise ValueError(
                f"n_future and pseudo_len must be >= 1, got {self.n_future}, {self.pseudo_len}"
            )
        if self.decoder.vocab_size != self.encoder.vocab_size:
            raise ValueError("encoder and decoder must share the vocabulary")
        self.to_pseudo = nn.Dense(self.pseudo_len * self.decoder.dim, name="to_pseudo")

    def pseudo_sequence(self, h_BxLxD):
        """`[B, L, D]` -> the decoder's memory, flattened over positions: `[B * L, P, E]`."""
        b, length, _ = h_BxLxD.shape
        return self.to_pseudo(h_BxLxD).reshape(b * length, self.pseudo_len, self.decoder.dim)

    def decode(self, h_BxLxD, teacher):
        """Decoder logits `[B, L, N, V]` for teacher inputs `[B, L, N]` (or one-hots)."""
        b, length = h_BxLxD.shape[:2]
        flat = teacher.reshape(b * length, *teacher.shape[2:])
        logits = self.decoder(flat, self.pseudo_sequence(h_BxLxD))
        return logits.reshape(b, length, self.n_future, -1)

    def __call__(self, inputs, return_embeddings: bool = False):
        """-> logits `[B, L, N, V]` (and `h_BxLxD` with `return_embeddings`)."""
        h = self.encoder(inputs)
        logits = self.decode(h, teacher_inputs(inputs, self.n_future, self.encoder.vocab_size))
        return (logits, h) if return_embeddings else logits

    def free_running(self, h_BxLxD):
        """Greedy decoding of N tokens from each position's pseudo-sequence alone (the decoder
        feeds back its own argmax): int `[B, L, N]`."""
        b, length = h_BxLxD.shape[:2]
        bos = self.encoder.vocab_size
        teacher = jnp.full((b, length, self.n_future), bos, jnp.int32)
        preds = []
        for j in range(self.n_future):
            tok = jnp.argmax(self.decode(h_BxLxD, teacher)[:, :, j], axis=-1).astype(jnp.int32)
            preds.append(tok)
            if j + 1 < self.n_future:
                teacher = teacher.at[:, :, j + 1].set(tok)
        return jnp.stack(preds, axis=2)


def future_targets(targets_BxL, mask_BxL, n_future: int):
    """Targets and mask `[B, L, N]`: slot `j` of position `t` is `targets[t + j]` (token
    `t + 1 + j`), masked past the end of the sequence."""
    pad = ((0, 0), (0, n_future - 1))
    t = jnp.pad(targets_BxL, pad)
    m = jnp.pad(mask_BxL.astype(jnp.float32), pad)
    length = targets_BxL.shape[1]
    return (
        jnp.stack([t[:, j : j + length] for j in range(n_future)], axis=2),
        jnp.stack([m[:, j : j + length] for j in range(n_future)], axis=2),
    )


def ftp_loss(logits_BxLxNxV, targets_BxL, mask_BxL, future_decay: float = 1.0):
    """Teacher-forced cross-entropy of all N slots, slot `j` weighted `future_decay ** j`
    (weights normalised to sum 1).

    Returns:
      `(loss, metrics)`: metrics of slot 0 under the usual names (`bits_per_token`,
      `accuracy`, `count`: the next-token prediction), and `bits_j`, `acc_j` for slots
      `j = 1..N` (1-based: token `t + j`).
    """
    n = logits_BxLxNxV.shape[2]
    tgt, msk = future_targets(targets_BxL, mask_BxL, n)
    logits = logits_BxLxNxV.astype(jnp.float32)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, tgt)
    correct = (jnp.argmax(logits, -1) == tgt).astype(jnp.float32)
    counts = jnp.maximum(msk.sum((0, 1)), 1.0)  # [N]
    ce_n = (ce * msk).sum((0, 1)) / counts
    acc_n = (correct * msk).sum((0, 1)) / counts
    w = future_decay ** np.arange(n, dtype=np.float32)
    loss = jnp.sum(ce_n * w) / w.sum()
    metrics = {
        "bits_per_token": ce_n[0] / losses.LN2,
        "accuracy": acc_n[0],
        "count": msk[:, :, 0].sum(),
    }
    for j in range(n):
        metrics[f"bits_{j + 1}"] = ce_n[j] / losses.LN2
        metrics[f"acc_{j + 1}"] = acc_n[j]
    return loss, metrics


def make_model(model_cfg, vocab_size: int) -> nn.Module:
    """`GPT` or `FTP` (`model_cfg.kind`) over the same `Encoder` shape."""
    encoder = Encoder(vocab_size, model_cfg.dim, model_cfg.depth, model_cfg.num_heads)
    if model_cfg.kind == "gpt":
        return GPT(encoder)
    if model_cfg.kind == "ftp":
        decoder = FTPDecoder(
            vocab_size, model_cfg.decoder_dim, model_cfg.decoder_depth, model_cfg.num_heads
        )
        return FTP(encoder, decoder, model_cfg.n_future, model_cfg.pseudo_len)
    raise ValueError(f"unknown model kind {model_cfg.kind!r}; expected 'gpt' or 'ftp'")


def greedy_continuations(model, params, inputs_BxL, cuts, n_future: int):
    """Each model's own greedy guess of the N tokens after position `t` for each `t` in
    `cuts`, from the text up to `t` only: GPT feeds its argmax back through the whole model
    (autoregressive rollout); FTP decodes the pseudo-sequence of `h_t` (`FTP.free_running`).

    Returns:
      int `[B, len(cuts), N]`: slot `j` guesses token `t + 1 + j` (`inputs[t + 1 + j]`).
    """
    length = inputs_BxL.shape[1]
    if max(cuts) + n_future > length:
        raise ValueError(f"cuts {cuts} + {n_future} tokens do not fit in length {length}")
    if isinstance(model, FTP):
        _, h = model.apply(params, inputs_BxL, return_embeddings=True)
        preds = model.apply(params, h[:, list(cuts)], method="free_running")
        return preds
    out = []
    for t in cuts:
        buf, preds = inputs_BxL, []
        for j in range(n_future):
            tok = jnp.argmax(model.apply(params, buf)[:, t + j], axis=-1).astype(inputs_BxL.dtype)
            preds.append(tok)
            buf = buf.at[:, t + j + 1].set(tok) if t + j + 1 < length else buf
        out.append(jnp.stack(preds, axis=1))
    return jnp.stack(out, axis=1)


def make_loss_fn(model_cfg, lags=(1, 2, 4, 8, 16)):
    """`loss_fn(params, batch, rng, *, model, train)` for `lib.train`; at evaluation it adds
    the embedding smoothness (`cos_k`: mean cosine of `h_t`, `h_{t+k}`; `cos_1c`: the same
    after removing the batch mean; `cos_far`: rows half a batch apart) and, for
    FTP, free-running accuracy `free_acc_j` of the decoder's greedy N-token guesses."""
    is_ftp = model_cfg.kind == "ftp"

    def loss_fn(params, batch, rng, *, model, train):
        del rng
        logits, h = model.apply({"params": params}, batch["inputs"], return_embeddings=True)
        mask = batch["mask"]
        if is_ftp:
            loss, metrics = ftp_loss(logits, batch["targets"], mask, model_cfg.future_decay)
        else:
            loss, metrics = losses.lm_loss(logits, batch["targets"], mask)
        if train:
            return loss, metrics
        metrics.update(smoothness.smoothness_metrics(h, mask, lags))
        if is_ftp:
            preds = model.apply({"params": params}, h, method="free_running")
            tgt, msk = future_targets(batch["targets"], mask, model.n_future)
            hits = ((preds == tgt) * msk).sum((0, 1)) / jnp.maximum(msk.sum((0, 1)), 1.0)
            metrics.update({f"free_acc_{j + 1}": hits[j] for j in range(model.n_future)})
        return loss, metrics

    return loss_fn


def build(config) -> dict:
    """Model, loss and `shakespeare_char` data for `lib.train.loop.train_and_evaluate`; its
    `on_end` hook measures `smoothness.embedding_statistics` on the test (or validation) set
    and returns them as `analysis_*` metrics."""
    from research.baselines.model import build as baseline_build

    # The baselines project already cuts stored windows into sequences, pads the last eval
    # batch and shuffles; reuse its data plumbing and swap in this project's model and loss.
    built = baseline_build(_baseline_view(config))
    model = make_model(config.model, built["model"].vocab_size)
    held_out = built["test_data"] or built["eval_data"]

    def on_end(state, workdir):
        del workdir
        embed = jax.jit(lambda p, x: model.apply({"params": p}, x, return_embeddings=True)[1])
        hs, masks = [], []
        for i, batch in enumerate(held_out()):
            if i == config.model.analysis_batches:
                break
            hs.append(np.asarray(embed(state.params, batch["inputs"])))
            masks.append(batch["mask"])
        stats = smoothness.embedding_statistics(
            np.concatenate(hs), np.concatenate(masks), list(config.model.lags)
        )
        stats.update(rollout_accuracy(state.params))
        return {f"analysis_{k}": v for k, v in stats.items()}

    n, cuts = config.model.n_future, tuple(config.model.rollout_cuts)

    def rollout_accuracy(params):
        """Accuracy of each model's own greedy N-token continuations after `cuts`."""
        guess = jax.jit(lambda p, x: greedy_continuations(model, {"params": p}, x, cuts, n))
        hits, count = np.zeros(n), 0.0
        for i, batch in enumerate(held_out()):
            if i == config.model.analysis_batches:
                break
            preds = np.asarray(guess(params, batch["inputs"]))  # [B, C, N]
            idx = np.asarray(cuts)[:, None] + np.arange(n)  # [C, N]: targets[t + j]
            truth, ok = batch["targets"][:, idx], batch["mask"][:, idx]
            hits += ((preds == truth) * ok).sum((0, 1))
            count += ok[..., 0].sum()
        return {f"rollout_acc_{j + 1}": float(hits[j] / max(count, 1.0)) for j in range(n)}

    return {
        "model": model,
        "loss_fn": make_loss_fn(config.model, tuple(config.model.lags)),
        "train_data": built["train_data"],
        "eval_data": built["eval_data"],
        "test_data": built["test_data"],
        "on_end": on_end,
    }


def _baseline_view(config):
    """A copy of `config` whose `model` the baselines' builder accepts (a tiny GRU it builds
    but never trains; only its data iterators are used)."""
    view = config.copy_and_resolve_references()
    with view.unlocked():
        view.model = ml_collections.ConfigDict(
            {"kind": "gru", "dim": 8, "num_layers": 1, "dropout": 0.0}
        )
        view.data.num_samples = 0
    return view
