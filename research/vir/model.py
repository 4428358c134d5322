"""ViR: Vision Retention Networks (Hatamizadeh et al., 2023), small scale.

A ViR is a ViT whose self-attention is RetNet's retention (`lib.nn.linear_attention.mixers.RetNet`,
built on `lib.ops.linear_attention.retention.retention`): image patches form a causal
sequence, the class token goes LAST so that it retains every patch, and the same weights run in
the parallel form (quadratic, for training) or the recurrent form (one patch at a time with a
`[b, h, dk, dv]` state, for low-memory inference). `ViT` is the same network with softmax
attention (`lib.nn.attention.mixers.MultiHeadAttention`, bidirectional, class token first) as the
baseline. `build(config)` trains either on sklearn's 8x8 digits (`lib.data.images`) or on a
prepared `lib.data` image set (MNIST) through the shared `lib.train.loop.train_and_evaluate`.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from lib.data.arrays import EpochBatches, eval_batches, load_arrays
from lib.data.images import sklearn_digits_splits
from lib.nn.linear_attention.mixers import RetNet
from lib.ops.attention.softmax import attention_ref
from lib.train.fit import accuracy, softmax_cross_entropy
from lib.train.losses import array_loss
from lib.train.state import num_params


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


def make_model(m):
    """The network named by `m.name` ("vir" or "vit"; `m` is `config.model`) with `dim`,
    `depth`, `num_heads`, `patch` (and, for the ViR, `method`, `image_size`)."""
    kw = dict(dim=m.dim, depth=m.depth, num_heads=m.num_heads, patch=m.patch)
    if m.name == "vir":
        return ViR(method=m.method, image_size=m.image_size, **kw)
    if m.name == "vit":
        return ViT(**kw)
    raise ValueError(f"unknown model.name {m.name!r}; expected 'vir' or 'vit'")


def image_splits(d) -> dict:
    """`{"train": (x [n, H, W, 1] float32 in [0, 1], y [n] int32), "test": ...}` for
    `d.name` (`d` is `config.data`): "digits" (sklearn 8x8) or a prepared `lib.data` image
    set (mnist, fashion_mnist), the first `d.train_examples` / `d.test_examples` (0: all)."""
    limits = {"train": d.train_examples, "test": d.test_examples}
    if d.name == "digits":
        splits = sklearn_digits_splits()
        out = {s: (splits[s][0][..., None].astype(np.float32) / 16.0, splits[s][1]) for s in limits}
    else:
        data_dir = d.data_dir or None
        out = {s: load_arrays(d.name, s, limit=limits[s], data_dir=data_dir) for s in limits}
    for s, n in limits.items():
        if n and len(out[s][1]) < n:
            raise ValueError(f"data.{s}_examples is {n} but {d.name}/{s} has {len(out[s][1])}")
        out[s] = tuple(a[: n or None] for a in out[s])
    return out


# Softmax cross-entropy and accuracy in the loop's contract; padded evaluation batches
# (`eval_batches`, weight 0 on the padding) are averaged over the real examples only.
loss_fn = array_loss(softmax_cross_entropy, metrics=accuracy, train_flag=False)


def build(config) -> dict:
    """`config.model` trained on `config.data` (see configs/digits.py): the keyword arguments
    of `lib.train.loop.train_and_evaluate`. Training batches are epochs of fresh permutations
    of the (in-memory) training set; the test set is evaluated once at the end
    (`test_accuracy`); `on_end` adds `num_params`."""
    d = config.data
    data = image_splits(d)
    (x, y), (x_test, y_test) = data["train"], data["test"]
    model = make_model(config.model)

    def on_end(state, workdir):
        return {"num_params": num_params(state.params)}

    return {
        "model": model,
        "loss_fn": loss_fn,
        "train_data": EpochBatches({"inputs": x, "targets": y}, d.batch_size, seed=config.seed),
        "test_data": eval_batches(x_test, y_test, d.eval_batch_size),
        "on_end": on_end,
    }
