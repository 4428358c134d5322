"""ViR: Vision Retention Networks (Hatamizadeh et al., 2023), small scale.

A ViR is a ViT whose self-attention is RetNet's retention (`lib.nn.linear_attention.mixers.RetNet`,
built on `lib.ops.linear_attention.retention.retention`): image patches form a causal
sequence, the class token goes LAST so that it retains every patch, and the same weights run in
the parallel form (quadratic, for training) or the recurrent form (one patch at a time with a
`[b, h, dk, dv]` state, for low-memory inference). `ViT` is the same network with softmax
attention (`lib.nn.attention.mixers.MultiHeadAttention`, bidirectional, class token first) as the
baseline. `train_images` trains either on sklearn's 8x8 digits (`lib.data.images`) or on a
prepared `lib.data` image set (MNIST) with the shared `lib.train.classify.fit_classifier`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from lib.data.images import sklearn_digits_splits
from lib.nn.linear_attention.mixers import RetNet
from lib.ops.attention.softmax import attention_ref
from lib.train.classify import fit_classifier, load_arrays


def patchify(images_BxHxWxC, patch):
    """`[b, H, W, c] -> [b, (H/p)(W/p), p*p*c]` row-major patches."""
    b, h, w, c = images_BxHxWxC.shape
    if h % patch or w % patch:
        raise ValueError(f"image size {(h, w)} must divide by patch size {patch}")
    x = images_BxHxWxC.reshape(b, h // patch, patch, w // patch, patch, c)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, (h // patch) * (w // patch), -1)


class Block(nn.Module):
    """Pre-norm block: `x + mixer(LN(x))`, then `x + MLP(LN(x))`."""

    dim: int
    mixer: nn.Module
    mlp_ratio: int = 2

    def setup(self):
        self.ln1, self.ln2 = nn.LayerNorm(), nn.LayerNorm()
        self.fc1, self.fc2 = nn.Dense(self.dim * self.mlp_ratio), nn.Dense(self.dim)

    def _mlp(self, x):
        return x + self.fc2(nn.gelu(self.fc1(self.ln2(x))))

    def __call__(self, x_BxLxD):
        return self._mlp(x_BxLxD + self.mixer(self.ln1(x_BxLxD)))

    def step(self, state, x_BxD):
        """Recurrent form for one token (mixers with `step`, i.e. retention)."""
        state, y = self.mixer.step(state, self.ln1(x_BxD))
        return state, self._mlp(x_BxD + y)


class ViR(nn.Module):
    """Vision retention network: patches -> retention blocks -> class token (last) -> logits.

    Attributes:
      num_classes, dim, depth, num_heads, patch: the network.
      image_size: square image side (sets the learned position table).
      method: retention's full-sequence form ("parallel", "chunked" or "ref").
      chunk_size: tokens per chunk of the chunked form.
    Call: `images [b, H, W, c] -> logits [b, num_classes]`; `recurrent(images)` gives the same
    logits one token at a time.
    """

    num_classes: int = 10
    dim: int = 64
    depth: int = 2
    num_heads: int = 4
    patch: int = 2
    image_size: int = 8
    method: str = "parallel"
    chunk_size: int = 64

    def setup(self):
        self.embed = nn.Dense(self.dim, name="embed")
        self.cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, self.dim))
        num_tokens = (self.image_size // self.patch) ** 2 + 1
        self.pos = self.param("pos", nn.initializers.normal(0.02), (1, num_tokens, self.dim))
        self.blocks = [
            Block(
                self.dim,
                RetNet(self.dim, self.num_heads, chunk_size=self.chunk_size, method=self.method),
                name=f"block{i}",
            )
            for i in range(self.depth)
        ]
        self.norm = nn.LayerNorm()
        self.head = nn.Dense(self.num_classes)

    def _tokens(self, images):
        x = self.embed(patchify(images.astype(jnp.float32), self.patch))
        cls = jnp.broadcast_to(self.cls, (x.shape[0], 1, self.dim))
        return jnp.concatenate([x, cls], axis=1) + self.pos

    def __call__(self, images_BxHxWxC):
        x = self._tokens(images_BxHxWxC)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x[:, -1]))

    def recurrent(self, images_BxHxWxC):
        """The same logits, each block run token by token with `RetNet.step` (`lax.scan`)."""
        x = self._tokens(images_BxHxWxC)
        b = x.shape[0]
        for block in self.blocks:
            state = block.mixer.init_state(b)
            ys = []
            for t in range(x.shape[1]):  # short patch sequences: unrolled is fine
                state, y = block.step(state, x[:, t])
                ys.append(y)
            x = jnp.stack(ys, axis=1)
        return self.head(self.norm(x[:, -1]))


class BidirectionalAttention(nn.Module):
    """ViT's global (unmasked) softmax attention over patches, via `lib.ops.attention.softmax`."""

    dim: int
    num_heads: int = 4

    @nn.compact
    def __call__(self, x_BxLxD):
        b, length, _ = x_BxLxD.shape
        shape = (b, length, self.num_heads, self.dim // self.num_heads)
        q, k, v = (nn.Dense(self.dim, use_bias=False, name=n)(x_BxLxD).reshape(shape)
                   for n in ("q", "k", "v"))  # fmt: skip
        o = attention_ref(q, k, v).reshape(b, length, self.dim)
        return nn.Dense(self.dim, use_bias=False, name="o")(o)


class ViT(nn.Module):
    """Baseline: the same network with bidirectional softmax attention, class token first."""

    num_classes: int = 10
    dim: int = 64
    depth: int = 2
    num_heads: int = 4
    patch: int = 2

    @nn.compact
    def __call__(self, images_BxHxWxC):
        x = nn.Dense(self.dim, name="embed")(
            patchify(images_BxHxWxC.astype(jnp.float32), self.patch)
        )
        cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, self.dim))
        x = jnp.concatenate([jnp.broadcast_to(cls, (x.shape[0], 1, self.dim)), x], axis=1)
        x = x + self.param("pos", nn.initializers.normal(0.02), (1, x.shape[1], self.dim))
        for i in range(self.depth):
            attn = BidirectionalAttention(self.dim, self.num_heads)
            x = Block(self.dim, attn, name=f"block{i}")(x)
        return nn.Dense(self.num_classes)(nn.LayerNorm()(x[:, 0]))


def make_model(config):
    """`config.model` ("vir" or "vit") with `dim`, `depth`, `num_heads`, `patch`."""
    kw = dict(dim=config.dim, depth=config.depth, num_heads=config.num_heads, patch=config.patch)
    if config.model == "vir":
        return ViR(method=config.method, image_size=config.get("image_size", 8), **kw)
    if config.model == "vit":
        return ViT(**kw)
    raise ValueError(f"unknown model {config.model!r}; expected 'vir' or 'vit'")


def image_splits(config):
    """`{"train": (x, y), "test": (x, y)}` for `config.data`: "digits" (sklearn 8x8) or a
    `lib.data` image set, train limited to `config.train_examples` (0: all)."""
    if config.data == "digits":
        splits = sklearn_digits_splits()
        prep = lambda s: (splits[s][0][..., None].astype(np.float32) / 16.0, splits[s][1])
        return {"train": prep("train"), "test": prep("test")}
    return {
        "train": load_arrays(config.data, "train", limit=config.get("train_examples", 0)),
        "test": load_arrays(config.data, "test", limit=config.get("test_examples", 0)),
    }


def train_images(config) -> dict:
    """Train `make_model(config)` on `config.data` with `lib.train.classify.fit_classifier`
    (AdamW, warmup-cosine with at most 50 warmup steps).

    Returns dict with `model`, `params`, `train_loss` (last epoch mean), `test_accuracy`,
    `num_params` and `seconds`.
    """
    data = image_splits(config)
    model = make_model(config)
    result = fit_classifier(
        model, data["train"], data["test"], epochs=config.epochs, batch_size=config.batch_size,
        lr=config.lr, weight_decay=config.weight_decay, seed=config.seed, max_warmup_steps=50,
    )  # fmt: skip
    return {"model": model, **result}
