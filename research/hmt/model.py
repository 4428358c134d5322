"""HMT: Hierarchical Memory Transformer (He et al., 2024), small scale, on a lib.nn backbone.

A long input is split into segments of `segment_len` tokens. For segment n:

1. representation encoding: the backbone reads `[T || summary tokens || T]` (T a learned prompt
   embedding) and its output at the last position is the summary `S_n`;
2. memory search: `P_n = softmax(q(S_n) k(M)^T / sqrt(d)) M`, cross-attention of the summary
   over the cache `M` of the last `num_memories` memory embeddings (a learned `P_0` while the
   cache is empty);
3. memory encoding: the backbone reads `[P_n || sensory || segment || P_n]`, where `sensory` are
   the embeddings of the last `sensory_len` tokens of the previous segment; the outputs at the
   segment's positions give its logits, the output at the last position is the new memory
   embedding `M_{n+1}`, pushed to the cache.

Gradients flow through the memories over every segment of a training sequence (BPTT over the
sequence). With `num_memories=0` there is no memory path: each segment is read alone (plus its
sensory tokens), so `HMT(segment_len=L, num_memories=0, sensory_len=0)` is the plain backbone
with full context `L`.

Causality. The paper summarises the first `summary_len` tokens of the *current* segment
(`summary_source="prefix"`). For next-token prediction this leaks: `P_n` sits before the
segment, so the prediction at position t < summary_len - 1 sees tokens after t through the
recall weights. The default `summary_source="previous"` summarises the last `summary_len`
tokens of the previous segment instead, which keeps the whole model causal (tested).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from lib.nn.blocks import PreNormBlock, RMSNorm
from lib.train import losses

SUMMARY_SOURCES = ("previous", "prefix")


class Backbone(nn.Module):
    """A causal pre-norm Transformer on embeddings: `depth` blocks of lib.nn's rotary
    `MultiHeadAttention` and gated MLP, then RMSNorm. `[b, l, dim] -> [b, l, dim]`."""

    dim: int
    depth: int = 2
    num_heads: int = 4
    mlp_hidden_dim: int | None = None

    @nn.compact
    def __call__(self, x_BxLxD):
        if x_BxLxD.ndim != 3 or x_BxLxD.shape[-1] != self.dim:
            raise ValueError(f"Backbone expects [b, l, {self.dim}], got {x_BxLxD.shape}")
        kwargs = {"num_heads": self.num_heads, "positions": "rope"}
        for i in range(self.depth):
            x_BxLxD = PreNormBlock(
                self.dim, "attention", kwargs, self.mlp_hidden_dim, name=f"block_{i}"
            )(x_BxLxD)
        return RMSNorm(name="final_norm")(x_BxLxD)


class HMT(nn.Module):
    """Hierarchical Memory Transformer language model around `backbone`.

    Attributes:
      backbone: a module `[b, l, d] -> [b, l, d]` with a `dim` field (e.g. `Backbone`); it is
        shared by the summary and the memory-encoding passes.
      vocab_size: token vocabulary.
      segment_len: tokens per segment (the backbone's context window, memory tokens aside).
      num_memories: N, the cached memory embeddings recalled from (0: no memory path).
      sensory_len: k, embeddings of the previous segment's last tokens prepended (0: none).
      summary_len: j, tokens summarised into the recall query (default segment_len // 2).
      summary_source: "previous" (causal, default) or "prefix" (the paper's; leaks, see above).
    """

    backbone: nn.Module
    vocab_size: int
    segment_len: int
    num_memories: int = 4
    sensory_len: int = 0
    summary_len: int | None = None
    summary_source: str = "previous"

    def setup(self):
        d = self.backbone.dim
        if self.segment_len < 1 or self.num_memories < 0 or self.sensory_len < 0:
            raise ValueError(
                "need segment_len >= 1, num_memories >= 0, sensory_len >= 0; got "
                f"{self.segment_len}, {self.num_memories}, {self.sensory_len}"
            )
        if not 0 <= self.sensory_len <= self.segment_len:
            raise ValueError(
                f"sensory_len {self.sensory_len} exceeds segment_len {self.segment_len}"
            )
        if not 1 <= self._summary_len <= self.segment_len:
            raise ValueError(f"summary_len must be in [1, segment_len], got {self._summary_len}")
        if self.summary_source not in SUMMARY_SOURCES:
            raise ValueError(
                f"summary_source must be one of {SUMMARY_SOURCES}, got {self.summary_source!r}"
            )
        self.embed = nn.Embed(self.vocab_size, d, name="embed")
        self.head = nn.Dense(self.vocab_size, name="head")
        if self.num_memories:
            init = nn.initializers.normal(1.0)
            self.prompt_T = self.param("prompt_T", init, (d,))
            self.memory_P0 = self.param("memory_P0", init, (d,))
            self.query = nn.Dense(d, use_bias=False, name="query")
            self.key = nn.Dense(d, use_bias=False, name="key")

    @property
    def _summary_len(self):
        return self.summary_len or max(self.segment_len // 2, 1)

    def embed_tokens(self, tokens_BxL):
        """int `[b, L]` -> token embeddings `[b, L, d]`."""
        if tokens_BxL.ndim != 2 or not jnp.issubdtype(tokens_BxL.dtype, jnp.integer):
            raise ValueError(
                f"tokens must be int [batch, length], got {tokens_BxL.dtype}{tokens_BxL.shape}"
            )
        return self.embed(tokens_BxL)

    def __call__(self, tokens_BxL):
        """int tokens `[b, L]` (L a multiple of segment_len) -> logits float32 `[b, L, vocab]`."""
        return self.logits_from_embeddings(self.embed_tokens(tokens_BxL))

    def _summaries(self, x_BxLxD, num_segments):
        """Summary `S_n` `[b, d]` for every segment (None where the source is empty), from one
        batched backbone call over all segments' `[T || j tokens || T]`."""
        b, _, d = x_BxLxD.shape
        S, j = self.segment_len, self._summary_len
        first = 1 if self.summary_source == "previous" else 0
        starts = [
            n * S - j if self.summary_source == "previous" else n * S
            for n in range(first, num_segments)
        ]
        if not starts:
            return [None] * num_segments
        src_NxBxJxD = jnp.stack([x_BxLxD[:, s : s + j] for s in starts])
        T = jnp.broadcast_to(self.prompt_T.astype(x_BxLxD.dtype), (len(starts), b, 1, d))
        inp = jnp.concatenate([T, src_NxBxJxD, T], axis=2).reshape(len(starts) * b, j + 2, d)
        S_NxBxD = self.backbone(inp)[:, -1].reshape(len(starts), b, d)
        return [None] * first + list(S_NxBxD)

    def _recall(self, S_BxD, cache):
        """Memory search: the summary's attention over the cached memories -> `P_n` `[b, d]`."""
        if not cache:
            return jnp.broadcast_to(self.memory_P0, S_BxD.shape).astype(S_BxD.dtype)
        M_BxNxD = jnp.stack(cache, axis=1)
        q_BxD, k_BxNxD = self.query(S_BxD), self.key(M_BxNxD)
        scores_BxN = jnp.einsum("bd,bnd->bn", q_BxD, k_BxNxD) / jnp.sqrt(q_BxD.shape[-1]).astype(
            q_BxD.dtype
        )
        return jnp.einsum("bn,bnd->bd", jax.nn.softmax(scores_BxN, axis=-1), M_BxNxD)

    def logits_from_embeddings(self, x_BxLxD):
        """Token embeddings `[b, L, d]` -> logits `[b, L, vocab]` (segment by segment, memory
        carried across segments)."""
        b, L, d = x_BxLxD.shape
        S, k = self.segment_len, self.sensory_len
        if L % S:
            raise ValueError(f"sequence length {L} is not a multiple of segment_len {S}")
        num_segments = L // S
        if not self.num_memories:
            return self.head(self._independent_segments(x_BxLxD, num_segments)).astype(jnp.float32)
        summaries = self._summaries(x_BxLxD, num_segments)
        cache, outputs = [], []
        for n in range(num_segments):
            seg = x_BxLxD[:, n * S : (n + 1) * S]
            sensory = x_BxLxD[:, n * S - k : n * S] if n and k else x_BxLxD[:, :0]
            S_n = summaries[n] if summaries[n] is not None else jnp.zeros((b, d), x_BxLxD.dtype)
            P_n = self._recall(S_n, cache)[:, None]
            h = self.backbone(jnp.concatenate([P_n, sensory, seg, P_n], axis=1))
            outputs.append(h[:, 1 + sensory.shape[1] : -1])
            cache = (cache + [h[:, -1]])[-self.num_memories :]
        return self.head(jnp.concatenate(outputs, axis=1)).astype(jnp.float32)

    def _independent_segments(self, x_BxLxD, num_segments):
        """No memory path: each segment (after the first, with its `sensory_len` predecessors)
        read alone; segments 1.. go through the backbone as one batch. -> hidden `[b, L, d]`."""
        b, _, d = x_BxLxD.shape
        S, k = self.segment_len, self.sensory_len
        first = self.backbone(x_BxLxD[:, :S])
        if num_segments == 1:
            return first
        windows = jnp.stack([x_BxLxD[:, n * S - k : (n + 1) * S] for n in range(1, num_segments)])
        rest = self.backbone(windows.reshape((num_segments - 1) * b, S + k, d))[:, k:]
        rest = rest.reshape(num_segments - 1, b, S, d).transpose(1, 0, 2, 3)
        return jnp.concatenate([first, rest.reshape(b, (num_segments - 1) * S, d)], axis=1)


def make_model(model_cfg, vocab_size: int) -> HMT:
    """`HMT` from a config section (`dim`, `depth`, `num_heads`, `segment_len`, `num_memories`,
    `sensory_len`, `summary_len`, `summary_source`)."""
    backbone = Backbone(model_cfg.dim, model_cfg.depth, model_cfg.num_heads)
    return HMT(
        backbone,
        vocab_size,
        model_cfg.segment_len,
        num_memories=model_cfg.num_memories,
        sensory_len=model_cfg.sensory_len,
        summary_len=model_cfg.summary_len or None,
        summary_source=model_cfg.summary_source,
    )


def segment_metrics(logits_BxLxV, targets_BxL, segment_len: int) -> dict:
    """Bits per token of each segment position: `{"bits_seg0": ..., "bits_seg1": ...}`."""
    b, L = targets_BxL.shape
    out = {}
    for n in range(L // segment_len):
        sl = slice(n * segment_len, (n + 1) * segment_len)
        out[f"bits_seg{n}"] = losses.lm_loss(logits_BxLxV[:, sl], targets_BxL[:, sl])[1][
            "bits_per_token"
        ]
    return out


def loss_fn(params, batch, rng, *, model, train, report_segment_len: int = 64):
    """Next-token cross-entropy (`lm_loss` metrics) plus bits per token per segment position
    (segments of `report_segment_len`, so every variant reports on the same grid)."""
    del rng, train
    logits = model.apply({"params": params}, batch["inputs"])
    loss, metrics = losses.lm_loss(logits, batch["targets"], batch.get("mask"))
    metrics.update(segment_metrics(logits, batch["targets"], report_segment_len))
    return loss, metrics


def build(config) -> dict:
    """What `launch/train.py` needs: model, loss, train iterator, eval/test factories."""
    import functools

    from research.hmt import data as hmt_data

    train_data, eval_data, test_data, vocab_size = hmt_data.make_data(config)
    model = make_model(config.model, vocab_size)
    return dict(
        model=model,
        loss_fn=functools.partial(loss_fn, report_segment_len=config.data.segment_len),
        train_data=train_data,
        eval_data=eval_data,
        test_data=test_data,
    )
