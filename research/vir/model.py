"""ViR: Vision Retention Networks (Hatamizadeh et al., 2023), small scale.

A ViR is a ViT whose self-attention is RetNet's retention (`lib.nn.linear_attention.RetNet`,
built on `lib.ops.linear_attention_retention.retention`): image patches form a causal
sequence, the class token goes LAST so that it retains every patch, and the same weights run in
the parallel form (quadratic, for training) or the recurrent form (one patch at a time with a
`[b, h, dk, dv]` state, for low-memory inference). `ViT` is the same network with softmax
attention (`lib.nn.attention.MultiHeadAttention`, bidirectional, class token first) as the
baseline. `train_digits` trains either on sklearn's 8x8 digits (`lib.data.images`).
"""

from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lib.data.images import sklearn_digits_splits
from lib.nn.linear_attention import RetNet
from lib.ops.attention import attention_ref


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

    def setup(self):
        self.embed = nn.Dense(self.dim, name="embed")
        self.cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, self.dim))
        num_tokens = (self.image_size // self.patch) ** 2 + 1
        self.pos = self.param("pos", nn.initializers.normal(0.02), (1, num_tokens, self.dim))
        self.blocks = [
            Block(self.dim, RetNet(self.dim, self.num_heads, method=self.method), name=f"block{i}")
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
    """ViT's global (unmasked) softmax attention over patches, via `lib.ops.attention`."""

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


def train_digits(config) -> dict:
    """Train `make_model(config)` on sklearn digits with AdamW; full-batch-free minibatches.

    Returns dict with `model`, `params`, `train_loss` (last epoch mean), `test_accuracy`,
    `num_params` and `seconds`.
    """
    splits = sklearn_digits_splits()
    prep = lambda s: (splits[s][0][..., None].astype(np.float32) / 16.0, splits[s][1])
    (xtr, ytr), (xte, yte) = prep("train"), prep("test")
    model = make_model(config)
    params = model.init(jax.random.key(config.seed), xtr[:2])
    steps = config.epochs * (len(ytr) // config.batch_size)
    sched = optax.warmup_cosine_decay_schedule(0.0, config.lr, min(50, steps // 10 + 1), steps)
    tx = optax.adamw(sched, weight_decay=config.weight_decay)
    opt = tx.init(params)

    def loss_fn(p, x, y):
        logits = model.apply(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train_step(p, o, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, loss

    rng = np.random.default_rng(config.seed)
    start, losses = time.time(), []
    for _ in range(config.epochs):
        perm, losses = rng.permutation(len(ytr)), []
        for i in range(len(ytr) // config.batch_size):
            idx = perm[i * config.batch_size : (i + 1) * config.batch_size]
            params, opt, loss = train_step(params, opt, xtr[idx], ytr[idx])
            losses.append(float(loss))
    logits = jax.jit(model.apply)(params, xte)
    acc = float((np.asarray(logits).argmax(-1) == yte).mean())
    n = sum(x.size for x in jax.tree.leaves(params))
    return dict(model=model, params=params, train_loss=float(np.mean(losses)),
                test_accuracy=acc, num_params=n, seconds=time.time() - start)  # fmt: skip
