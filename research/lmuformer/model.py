"""LMUFormer: Low Complexity Yet Powerful Spiking Model With Legendre Memory Units
(Liu et al., 2024), small scale, with its spiking twin.

`LMUFormer`: a causal convolutional patch embedding, then blocks of a Legendre Memory Unit token
mixer (`lib.nn.ssm.lmu.LMU`, a linear time-invariant memory run as a convolution in training) and a
channel-mixing MLP, then mean pooling over time and a classifier. Every layer is causal, so
`LMUFormer.stream` runs it one sample at a time with a fixed-size state (conv buffer, LMU
memories, running sum) and gives, at every step, the logits the parallel form gives for that
prefix. With `spiking=True` the embedding's, the LMU's and the channel mixer's activations are
LIF neurons (`lib.nn.spiking.layers.LIFNeuron`, over sequence time, surrogate gradients), as in the
paper's spiking LMUFormer; their membranes join the streaming state, and
`spike_rates(model, params, x)` reports how often each layer fires. `Transformer` is the baseline (causal
softmax attention, `lib.nn.attention.mixers`). `build(config)` trains on permuted-pixel
sklearn digits (64-step sequences) or a prepared `lib.data` sequence set (spoken keywords,
psMNIST) through the shared `lib.train.loop.train_and_evaluate`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lib.data.arrays import EpochBatches, eval_batches, load_arrays
from lib.data.images import sklearn_digits_splits
from lib.nn.attention.mixers import MultiHeadAttention
from lib.nn.spiking.layers import LIFNeuron
from lib.nn.ssm.lmu import LMU
from lib.train.fit import accuracy, softmax_cross_entropy
from lib.train.losses import array_loss
from lib.train.state import num_params


def _identity(x):
    return x


class CausalConvEmbed(nn.Module):
    """Causal 1-D convolution `[b, l, c] -> [b, l, dim]` (kernel `k`, no activation); given
    `window [b, k, c]` (the last `k` inputs) it gives the one output `[b, dim]` (step form)."""

    dim: int
    kernel: int = 3

    @nn.compact
    def __call__(self, x_BxLxC, window_BxKxC=None):
        w = self.param(
            "w", nn.initializers.lecun_normal(), (self.kernel, x_BxLxC.shape[-1], self.dim)
        )
        b = self.param("b", nn.initializers.zeros, (self.dim,))
        if window_BxKxC is not None:  # step form: one output from the last `kernel` inputs
            return jnp.einsum("bkc,kcd->bd", window_BxKxC, w) + b
        pad = jnp.pad(x_BxLxC, ((0, 0), (self.kernel - 1, 0), (0, 0)))
        length = x_BxLxC.shape[1]
        y = sum(jnp.einsum("blc,cd->bld", pad[:, i : i + length], w[i]) for i in range(self.kernel))
        return y + b


class Fire(nn.Module):
    """The spiking twin's activation: LIF neurons over time (`lib.nn.spiking.layers.LIFNeuron`,
    subtractive reset, fast-sigmoid surrogate) that also `sow` their firing rate into the
    "spikes" collection; `step` is the one-sample form with the membrane `[b, n]` as state."""

    beta: float = 0.5
    threshold: float = 1.0

    def setup(self):
        self.lif = LIFNeuron(beta=self.beta, threshold=self.threshold)

    def __call__(self, current_BxLxN):
        s = self.lif(current_BxLxN)
        if self.is_mutable_collection("spikes") and not self.is_initializing():
            self.sow("spikes", "rate", s.mean())
        return s

    def step(self, v_BxN, current_BxN):
        return self.lif.step(v_BxN, current_BxN)


class Block(nn.Module):
    """`x + mixer(LN(x))`, then `x + MLP(LN(x))` (the channel mixer).

    With `spiking`, the mixer's output goes through LIF neurons and the MLP's hidden GELU is
    replaced by LIF neurons (pass a mixer without its own activation). State for `step`: the
    mixer's state, or `(mixer state, mixer-LIF membrane, MLP-LIF membrane)` when spiking.
    """

    dim: int
    mixer: nn.Module
    mlp_ratio: int = 2
    spiking: bool = False
    beta: float = 0.5
    threshold: float = 1.0

    def setup(self):
        self.ln1, self.ln2 = nn.LayerNorm(), nn.LayerNorm()
        self.fc1, self.fc2 = nn.Dense(self.dim * self.mlp_ratio), nn.Dense(self.dim)
        if self.spiking:
            self.fire_mix = Fire(self.beta, self.threshold)
            self.fire_mlp = Fire(self.beta, self.threshold)

    def __call__(self, x_BxLxD):
        y = self.mixer(self.ln1(x_BxLxD))
        x = x_BxLxD + (self.fire_mix(y) if self.spiking else y)
        h = self.fc1(self.ln2(x))
        return x + self.fc2(self.fire_mlp(h) if self.spiking else nn.gelu(h))

    def init_state(self, batch_size):
        mem = self.mixer.init_state(batch_size)
        if not self.spiking:
            return mem
        zeros = lambda n: jnp.zeros((batch_size, n), jnp.float32)
        return mem, zeros(self.dim), zeros(self.dim * self.mlp_ratio)

    def step(self, state, x_BxD):
        mem, v_mix, v_mlp = state if self.spiking else (state, None, None)
        mem, y = self.mixer.step(mem, self.ln1(x_BxD))
        if self.spiking:
            v_mix, y = self.fire_mix.step(v_mix, y)
        x = x_BxD + y
        h = self.fc1(self.ln2(x))
        if self.spiking:
            v_mlp, h = self.fire_mlp.step(v_mlp, h)
        else:
            h = nn.gelu(h)
        return ((mem, v_mix, v_mlp) if self.spiking else mem), x + self.fc2(h)


class LMUFormer(nn.Module):
    """Conv embed -> LMU blocks -> mean over time -> logits.

    Attributes:
      num_classes, dim, depth: the network; order, theta: the LMU memory (window `theta` steps);
      kernel: embedding conv width; method: `lib.ops.ssm.lmu.lmu_memory` method.
      spiking: the spiking twin (LIF activations after the embedding, the LMU and in the
        channel mixer); beta, threshold: its LIF neurons' decay and threshold.
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
    spiking: bool = False
    beta: float = 0.5
    threshold: float = 1.0

    def setup(self):
        self.embed = CausalConvEmbed(self.dim, self.kernel)
        if self.spiking:
            self.fire_embed = Fire(self.beta, self.threshold)
        act = _identity if self.spiking else jax.nn.gelu  # spiking: LIF after the LMU instead
        self.blocks = [
            Block(
                self.dim,
                LMU(
                    self.dim, order=self.order, theta=self.theta, activation=act, method=self.method
                ),
                spiking=self.spiking,
                beta=self.beta,
                threshold=self.threshold,
            )  # fmt: skip
            for _ in range(self.depth)
        ]
        self.norm = nn.LayerNorm()
        self.head = nn.Dense(self.num_classes)

    def _features(self, x_BxLxC):
        x = self.embed(x_BxLxC)
        x = self.fire_embed(x) if self.spiking else jax.nn.gelu(x)
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
        (last `kernel` inputs, each block's LMU memory `[b, memory_dim, order]` and, spiking,
        LIF membranes, running sum); returns `[b, l, classes]` logits after every sample."""
        b, length, c = x_BxLxC.shape
        window = jnp.zeros((b, self.kernel, c), x_BxLxC.dtype)
        mems = [blk.init_state(b) for blk in self.blocks]
        v_embed = jnp.zeros((b, self.dim), jnp.float32)
        total, out = jnp.zeros((b, self.dim)), []
        for t in range(length):
            window = jnp.concatenate([window[:, 1:], x_BxLxC[:, t : t + 1]], axis=1)
            h = self.embed(x_BxLxC[:, :1], window)
            if self.spiking:
                v_embed, h = self.fire_embed.step(v_embed, h)
            else:
                h = jax.nn.gelu(h)
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


def spike_rates(model, params, x_BxLxC) -> dict:
    """Firing rate (spikes per neuron per step) of every LIF layer of a spiking `LMUFormer`
    on `x`, by layer path, and `mean` (their unweighted mean)."""
    if not getattr(model, "spiking", False):
        raise ValueError("spike_rates needs a spiking LMUFormer (spiking=True)")
    _, sown = jax.jit(lambda p, x: model.apply(p, x, mutable=["spikes"]))(params, x_BxLxC)
    rates = {
        "/".join(str(k.key) for k in path[:-2]): float(v)
        for path, v in jax.tree_util.tree_flatten_with_path(sown["spikes"])[0]
    }
    return {**rates, "mean": float(np.mean(list(rates.values())))}


def make_model(m):
    """`m.name` ("lmuformer", "spiking_lmuformer" or "transformer"; `m` is `config.model`)."""
    if m.name in ("lmuformer", "spiking_lmuformer"):
        return LMUFormer(dim=m.dim, depth=m.depth, order=m.order, theta=m.theta,
                         spiking=m.name == "spiking_lmuformer", beta=m.beta,
                         threshold=m.threshold)  # fmt: skip
    if m.name == "transformer":
        return Transformer(dim=m.dim, depth=m.depth, num_heads=m.num_heads)
    raise ValueError(
        f"unknown model.name {m.name!r}; expected 'lmuformer', 'spiking_lmuformer' or 'transformer'"
    )


def psdigits(seed=0):
    """Permuted-pixel sequential digits: split -> (x [n, 64, 1] float32 in [0, 1], y [n]).
    One fixed pixel permutation (seed) for every image, as in psMNIST."""
    perm = np.random.default_rng(seed).permutation(64)
    splits = sklearn_digits_splits()
    return {
        s: (img.reshape(len(img), 64)[:, perm, None].astype(np.float32) / 16.0, y)
        for s, (img, y) in splits.items()
    }


def sequence_splits(d) -> dict:
    """`{"train": (x [n, l, c], y), "test": (x, y)}` for `d.name` (`d` is `config.data`):
    "psdigits" (`psdigits(d.perm_seed)`) or a prepared `lib.data` sequence set such as
    "spoken_keywords_mel" or "psmnist", standardized per channel with the training
    statistics; the first `d.train_examples` / `d.test_examples` (0: all) of each split in
    stored order; `d.data_dir` ("": the default root)."""
    limits = {"train": d.train_examples, "test": d.test_examples}
    if d.name == "psdigits":
        out = {s: psdigits(d.perm_seed)[s] for s in limits}
    else:
        out = {s: load_arrays(d.name, s, limit=limits[s], data_dir=d.data_dir or None)
               for s in limits}  # fmt: skip
    for s, n in limits.items():
        if n and len(out[s][1]) < n:
            raise ValueError(f"data.{s}_examples is {n} but {d.name}/{s} has {len(out[s][1])}")
        out[s] = tuple(a[: n or None] for a in out[s])
    if d.name == "psdigits":
        return out
    (x_tr, y_tr), (x_te, y_te) = out["train"], out["test"]
    if x_tr.ndim != 3:
        raise ValueError(f"{d.name}: expected inputs [n, length, channels], got {x_tr.shape}")
    mean, std = x_tr.mean((0, 1)), x_tr.std((0, 1)) + 1e-6
    return {"train": ((x_tr - mean) / std, y_tr), "test": ((x_te - mean) / std, y_te)}


# Softmax cross-entropy and accuracy in the loop's contract; padded evaluation batches
# (`eval_batches`, weight 0 on the padding) are averaged over the real examples only.
loss_fn = array_loss(softmax_cross_entropy, metrics=accuracy, train_flag=False)


def build(config) -> dict:
    """`config.model` trained on `config.data` (see configs/psdigits.py): the keyword
    arguments of `lib.train.loop.train_and_evaluate`. Training batches are epochs of fresh
    permutations of the (in-memory) training set; the test set is evaluated at the end
    (`test_accuracy`); `on_end` adds `num_params` and, for the spiking twin, `spike_rate`
    (mean LIF firing rate on the test set)."""
    d = config.data
    data = sequence_splits(d)
    (x, y), (x_test, y_test) = data["train"], data["test"]
    model = make_model(config.model)

    def on_end(state, workdir):
        out = {"num_params": num_params(state.params)}
        if getattr(model, "spiking", False):
            rates = [spike_rates(model, {"params": state.params}, x_test[i : i + 256])["mean"]
                     for i in range(0, len(x_test), 256)]  # fmt: skip
            sizes = [len(x_test[i : i + 256]) for i in range(0, len(x_test), 256)]
            out["spike_rate"] = float(np.average(rates, weights=sizes))
        return out

    return {
        "model": model,
        "loss_fn": loss_fn,
        "train_data": EpochBatches({"inputs": x, "targets": y}, d.batch_size, seed=config.seed),
        "test_data": eval_batches(x_test, y_test, d.eval_batch_size),
        "on_end": on_end,
    }
