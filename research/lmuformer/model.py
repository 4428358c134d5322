"""LMUFormer: Low Complexity Yet Powerful Spiking Model With Legendre Memory Units
(Liu et al., 2024), non-spiking, small scale.

`LMUFormer`: a causal convolutional patch embedding, then blocks of a Legendre Memory Unit token
mixer (`lib.nn.lmu.LMU`, a linear time-invariant memory run as a convolution in training) and a
channel-mixing MLP, then mean pooling over time and a classifier. Every layer is causal, so
`LMUFormer.stream` runs it one sample at a time with a fixed-size state (conv buffer, LMU
memories, running sum) and gives, at every step, the logits the parallel form gives for that
prefix. `Transformer` is the baseline (causal softmax attention, `lib.nn.attention`).
`train_psdigits` trains on permuted-pixel sklearn digits (64-step sequences).
"""

from __future__ import annotations

import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lib.data.images import sklearn_digits_splits
from lib.nn.attention import MultiHeadAttention
from lib.nn.lmu import LMU


class CausalConvEmbed(nn.Module):
    """Causal 1-D convolution `[b, l, c] -> [b, l, dim]` (kernel `k`) and GELU; `step` form."""

    dim: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x_BxLxC, window_BxKxC=None):
        w = self.param(
            "w", nn.initializers.lecun_normal(), (self.kernel, x_BxLxC.shape[-1], self.dim)
        )
        b = self.param("b", nn.initializers.zeros, (self.dim,))
        if window_BxKxC is not None:  # step form: one output from the last `kernel` inputs
            return jax.nn.gelu(jnp.einsum("bkc,kcd->bd", window_BxKxC, w) + b)
        pad = jnp.pad(x_BxLxC, ((0, 0), (self.kernel - 1, 0), (0, 0)))
        length = x_BxLxC.shape[1]
        y = sum(jnp.einsum("blc,cd->bld", pad[:, i : i + length], w[i]) for i in range(self.kernel))
        return jax.nn.gelu(y + b)


class Block(nn.Module):
    """`x + mixer(LN(x))`, then `x + MLP(LN(x))` (the channel mixer)."""

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
        state, y = self.mixer.step(state, self.ln1(x_BxD))
        return state, self._mlp(x_BxD + y)


class LMUFormer(nn.Module):
    """Conv embed -> LMU blocks -> mean over time -> logits.

    Attributes:
      num_classes, dim, depth: the network; order, theta: the LMU memory (window `theta` steps);
      kernel: embedding conv width; method: `lib.ops.lmu.lmu_memory` method.
    Call: `x [b, l, c] -> logits [b, num_classes]`; `prefix_logits(x)` gives the logits of every
    prefix `[b, l, num_classes]`; `stream(x)` gives the same, one sample at a time.
    """

    num_classes: int = 10
    dim: int = 32
    depth: int = 1
    order: int = 16
    theta: float = 64.0
    kernel: int = 3
    method: str = "auto"

    def setup(self):
        self.embed = CausalConvEmbed(self.dim, self.kernel)
        self.blocks = [
            Block(self.dim, LMU(self.dim, order=self.order, theta=self.theta, method=self.method))
            for _ in range(self.depth)
        ]
        self.norm = nn.LayerNorm()
        self.head = nn.Dense(self.num_classes)

    def _features(self, x_BxLxC):
        x = self.embed(x_BxLxC)
        for block in self.blocks:
            x = block(x)
        return x

    def __call__(self, x_BxLxC):
        return self.head(self.norm(self._features(x_BxLxC).mean(axis=1)))

    def prefix_logits(self, x_BxLxC):
        """Logits after each prefix: the running mean of the features, `[b, l, classes]`."""
        h = self._features(x_BxLxC)
        mean = jnp.cumsum(h, axis=1) / jnp.arange(1, h.shape[1] + 1)[None, :, None]
        return self.head(self.norm(mean))

    def stream(self, x_BxLxC):
        """Streaming inference: `lax`-free Python loop over time with the state
        (last `kernel` inputs, each block's LMU memory `[b, memory_dim, order]`, running sum);
        returns `[b, l, classes]` logits after every sample."""
        b, length, c = x_BxLxC.shape
        window = jnp.zeros((b, self.kernel, c), x_BxLxC.dtype)
        mems = [blk.mixer.init_state(b) for blk in self.blocks]
        total, out = jnp.zeros((b, self.dim)), []
        for t in range(length):
            window = jnp.concatenate([window[:, 1:], x_BxLxC[:, t : t + 1]], axis=1)
            h = self.embed(x_BxLxC[:, :1], window)
            for i, blk in enumerate(self.blocks):
                mems[i], h = blk.step(mems[i], h)
            total = total + h
            out.append(self.head(self.norm(total / (t + 1))))
        return jnp.stack(out, axis=1)


class Transformer(nn.Module):
    """Baseline: linear embedding + learned positions, causal attention blocks, mean pooling."""

    num_classes: int = 10
    dim: int = 32
    depth: int = 1
    num_heads: int = 4

    @nn.compact
    def __call__(self, x_BxLxC):
        x = nn.Dense(self.dim)(x_BxLxC)
        x = x + self.param("pos", nn.initializers.normal(0.02), (1, x.shape[1], self.dim))
        for _ in range(self.depth):
            x = Block(self.dim, MultiHeadAttention(self.dim, self.num_heads, positions="none"))(x)
        return nn.Dense(self.num_classes)(nn.LayerNorm()(x.mean(axis=1)))


def make_model(c):
    """`c.model`: "lmuformer" or "transformer"."""
    if c.model == "lmuformer":
        return LMUFormer(dim=c.dim, depth=c.depth, order=c.order, theta=c.theta)
    if c.model == "transformer":
        return Transformer(dim=c.dim, depth=c.depth, num_heads=c.num_heads)
    raise ValueError(f"unknown model {c.model!r}; expected 'lmuformer' or 'transformer'")


def psdigits(seed=0):
    """Permuted-pixel sequential digits: split -> (x [n, 64, 1] float32 in [0, 1], y [n]).
    One fixed pixel permutation (seed) for every image, as in psMNIST."""
    perm = np.random.default_rng(seed).permutation(64)
    splits = sklearn_digits_splits()
    return {
        s: (img.reshape(len(img), 64)[:, perm, None].astype(np.float32) / 16.0, y)
        for s, (img, y) in splits.items()
    }


def train_psdigits(c) -> dict:
    """Train `make_model(c)` on permuted sequential digits with AdamW + warmup-cosine.

    Returns dict `model, params, train_loss, test_accuracy, num_params, seconds`.
    """
    data = psdigits(c.perm_seed)
    (xtr, ytr), (xte, yte) = data["train"], data["test"]
    model = make_model(c)
    params = model.init(jax.random.key(c.seed), xtr[:2])
    steps = c.epochs * (len(ytr) // c.batch_size)
    tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, c.lr, steps // 10 + 1, steps),
                     weight_decay=c.weight_decay)  # fmt: skip
    opt = tx.init(params)

    def loss_fn(p, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, x), y).mean()

    @jax.jit
    def train_step(p, o, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        upd, o = tx.update(g, o, p)
        return optax.apply_updates(p, upd), o, loss

    rng, start, losses = np.random.default_rng(c.seed), time.time(), []
    for _ in range(c.epochs):
        perm, losses = rng.permutation(len(ytr)), []
        for i in range(len(ytr) // c.batch_size):
            idx = perm[i * c.batch_size : (i + 1) * c.batch_size]
            params, opt, loss = train_step(params, opt, xtr[idx], ytr[idx])
            losses.append(float(loss))
    acc = float((np.asarray(jax.jit(model.apply)(params, xte)).argmax(-1) == yte).mean())
    n = sum(x.size for x in jax.tree.leaves(params))
    return dict(model=model, params=params, train_loss=float(np.mean(losses)),
                test_accuracy=acc, num_params=n, seconds=time.time() - start)  # fmt: skip
