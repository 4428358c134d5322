"""A tiny next-token task and model for the training-stack tests (also runnable as a script).

`python tests/train/tiny.py WORKDIR [NUM_STEPS] [SLEEP]` trains it in WORKDIR; the kill-and-resume
test runs it in a subprocess and signals it.
"""

import os
import sys
import time

import flax.linen as nn
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from lib.train import losses  # noqa: E402
from lib.train.config import base_config  # noqa: E402
from lib.train.sharding import make_mesh  # noqa: E402

VOCAB, LENGTH = 11, 12


class TinyLM(nn.Module):
    """Embedding -> dropout -> Dense -> logits: a bigram model with a random mask in training."""

    dim: int = 16

    @nn.compact
    def __call__(self, tokens_BxL, train: bool = False):
        h = nn.Embed(VOCAB, self.dim)(tokens_BxL)
        h = nn.Dropout(0.1, deterministic=not train)(h)
        h = nn.gelu(nn.Dense(self.dim)(h))
        return nn.Dense(VOCAB)(h)


def loss_fn(params, batch, rng, *, model, train):
    logits = model.apply({"params": params}, batch["inputs"], train=train, rngs={"dropout": rng})
    return losses.lm_loss(logits, batch["targets"], batch["mask"])


class Batches:
    """A resumable iterator of `(inputs, targets, mask)` batches: sequences `t, t+1, ... mod V`
    with noise; the batch at position n is a pure function of (seed, n)."""

    def __init__(self, batch_size=8, seed=0, limit=None):
        self.batch_size, self.seed, self.limit, self.position = batch_size, seed, limit, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.limit is not None and self.position >= self.limit:
            raise StopIteration
        rs = np.random.default_rng([self.seed, self.position])
        self.position += 1
        start = rs.integers(0, VOCAB, (self.batch_size, 1))
        seq = (start + np.arange(LENGTH + 1)) % VOCAB
        flip = rs.random(seq.shape) < 0.1
        seq = np.where(flip, rs.integers(0, VOCAB, seq.shape), seq).astype(np.int32)
        mask = np.ones((self.batch_size, LENGTH), np.float32)
        return {"inputs": seq[:, :-1], "targets": seq[:, 1:], "mask": mask}

    def get_state(self):
        return {"position": self.position}

    def set_state(self, state):
        self.position = int(state["position"])


def make_config(num_steps=20, **train):
    config = base_config()
    config.train.num_steps = num_steps
    config.train.log_every = 1
    config.train.eval_every = 0
    config.train.checkpoint_every = 5
    config.train.progress_bar = False
    config.train.plot = False
    config.optimizer.learning_rate = 3e-2
    config.optimizer.warmup_steps = 3
    config.optimizer.decay_steps = 40  # fixed, so runs of different lengths share it
    for k, v in train.items():
        config.train[k] = v
    return config


def run(
    workdir,
    num_steps=20,
    sleep=0.0,
    mesh=None,
    dim=16,
    loss=None,
    data=None,
    evaluate=True,
    **train,
):
    """Train TinyLM for `num_steps` in `workdir`; `sleep` seconds after each batch is drawn."""
    from lib.train.loop import train_and_evaluate

    data = Batches() if data is None else data
    if sleep:
        inner = data

        class Slow(Batches):
            def __next__(self):
                time.sleep(sleep)
                return inner.__next__()

            def get_state(self):
                return inner.get_state()

            def set_state(self, s):
                inner.set_state(s)

        data = Slow()
    return train_and_evaluate(
        make_config(num_steps, **train),
        workdir,
        model=TinyLM(dim),
        loss_fn=loss or loss_fn,
        train_data=data,
        eval_data=(lambda: Batches(seed=1, limit=2)) if evaluate else None,
        mesh=mesh or make_mesh(devices=jax.devices()[:1]),
    )


if __name__ == "__main__":
    jax.config.update("jax_platforms", "cpu")
    args = sys.argv[1:]
    steps, sleep = (int(args[1]) if len(args) > 1 else 20), (float(args[2]) if len(args) > 2 else 0)
    run(args[0], steps, sleep, evaluate=False)
