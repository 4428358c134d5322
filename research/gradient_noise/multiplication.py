"""Binary multiplication with and without annealed gradient noise (Neelakantan et al. 2015, the
Neural GPU experiment), at toy scale: success rate over random restarts.

The paper trains Neural GPUs (Kaiser & Sutskever 2016) on binary multiplication over ~7,000
random restarts and counts the accurate models: annealed gradient noise doubles that count. Here
a small Neural GPU (a stack of convolutional GRUs applied once per tape cell, weights shared over
steps) reads the question `a * b` from a tape and writes the product, least-significant bit
first, onto the same tape. The restarts train through `lib.train.fit` (all restarts of a noise
level vmapped; every level through the same compiled scan, `eta` being a traced argument).

Data: `lib.data` `algorithmic_multiplication`, generated in memory; the question tokens (before SEP) become the input
tape and the answer tokens + EOS the target tape, both padded with PAD to the tape width.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


class TapeConv(nn.Module):
    """A 1-D "SAME" convolution over the tape, `[b, w, c_in] -> [b, w, features]`, written as
    one einsum over the `kernel` shifted copies of the tape (the same maths and parameters as
    `nn.Conv(features, (kernel,), padding="SAME")`). Why not `nn.Conv`: vmapped over restarts
    (different weights per restart) a convolution becomes a grouped convolution, which is
    slow on XLA's CPU backend; an einsum stays a batched matmul."""

    features: int
    kernel: int = 3
    bias_init: nn.initializers.Initializer = nn.initializers.zeros

    @nn.compact
    def __call__(self, x_BxWxC):
        if self.kernel % 2 != 1:
            raise ValueError(
                f"kernel must be odd for a centred SAME convolution, got {self.kernel}"
            )
        c_in, width, half = x_BxWxC.shape[-1], x_BxWxC.shape[1], self.kernel // 2
        w_KxCxF = self.param(
            "kernel", nn.initializers.lecun_normal(), (self.kernel, c_in, self.features)
        )
        b_F = self.param("bias", self.bias_init, (self.features,))
        padded = jnp.pad(x_BxWxC, ((0, 0), (half, half), (0, 0)))
        shifted_BxWxKxC = jnp.stack([padded[:, i : i + width] for i in range(self.kernel)], 2)
        return jnp.einsum("bwkc,kcf->bwf", shifted_BxWxKxC, w_KxCxF) + b_F


class ConvGRU(nn.Module):
    """One convolutional GRU of the Neural GPU: `s <- u * s + (1 - u) * tanh(conv(r * s))`,
    with gates `u, r = sigmoid(conv(s))`; `s: [b, width, channels]` (a 1-D tape)."""

    channels: int
    kernel: int = 3

    @nn.compact
    def __call__(self, s_BxWxC):
        def conv(name, bias=0.0):
            return TapeConv(self.channels, self.kernel, nn.initializers.constant(bias), name=name)

        u = jax.nn.sigmoid(conv("update", 1.0)(s_BxWxC))  # bias 1: start close to "keep"
        r = jax.nn.sigmoid(conv("reset", 1.0)(s_BxWxC))
        c = jnp.tanh(conv("candidate")(r * s_BxWxC))
        return u * s_BxWxC + (1.0 - u) * c


class NeuralGPU(nn.Module):
    """A 1-D Neural GPU: embed the tape, apply `layers` shared ConvGRUs once per tape cell (so
    information can cross the whole tape), read logits off every cell.

    Attributes:
      vocab_size: token alphabet.
      channels: state channels per tape cell.
      layers: ConvGRUs per step (2 in the paper).
      kernel: convolution width.
      step_ratio: steps per tape cell (1 in the paper; 2 ConvGRUs of width 3 move information
        two cells per step, so 0.5 still lets every cell see the whole tape).
    """

    vocab_size: int
    channels: int = 24
    layers: int = 2
    kernel: int = 3
    step_ratio: float = 1.0

    @nn.compact
    def __call__(self, tape_BxW, train: bool = False):
        """Args: `tape_BxW` int tokens. Returns logits `[b, w, vocab_size]`."""
        del train
        if tape_BxW.ndim != 2:
            raise ValueError(f"tape must be [batch, width], got shape {tape_BxW.shape}")
        s = nn.Embed(self.vocab_size, self.channels, name="embed")(tape_BxW)
        # One compiled step scanned over the steps, its weights shared (an unrolled loop made
        # XLA's CPU compile of a training run take minutes).
        steps = max(1, math.ceil(self.step_ratio * tape_BxW.shape[1]))
        scan = nn.scan(
            _GPUStep, variable_broadcast="params", split_rngs={"params": False}, length=steps
        )
        s, _ = scan(self.channels, self.layers, self.kernel, name="steps")(s, None)
        return nn.Dense(self.vocab_size, name="head")(s)


class _GPUStep(nn.Module):
    """One Neural GPU step: `layers` ConvGRUs in a row (the body of `NeuralGPU`'s scan)."""

    channels: int
    layers: int
    kernel: int

    @nn.compact
    def __call__(self, s_BxWxC, _):
        for i in range(self.layers):
            s_BxWxC = ConvGRU(self.channels, self.kernel, name=f"cgru_{i}")(s_BxWxC)
        return s_BxWxC, None


def tapes_from_sequences(inputs_NxL, targets_NxL, mask_NxL, width: int | None = None):
    """Neural GPU tapes from `lib.data` algorithmic examples.

    Args:
      inputs_NxL, targets_NxL, mask_NxL: decoder-only `question SEP answer EOS` examples
        (next-token inputs/targets, loss mask on the answer and EOS).
      width: tape width; default the longest question or answer + EOS.

    Returns:
      `(tape_NxW, target_NxW)`: the question tokens left-aligned on the tape, and the answer
      tokens + EOS left-aligned on the target tape, PAD (0) elsewhere.
    """
    from lib.data.algorithmic import PAD, SEP

    qs, ans = [], []
    for x, y, m in zip(np.asarray(inputs_NxL), np.asarray(targets_NxL), np.asarray(mask_NxL)):
        sep = int(np.flatnonzero(x == SEP)[0])
        qs.append(x[:sep])
        ans.append(y[m > 0])
    need = max(max(len(q) for q in qs), max(len(a) for a in ans))
    width = need if width is None else width
    if width < need:
        raise ValueError(f"tape width {width} < longest question/answer {need}")
    tape = np.full((len(qs), width), PAD, np.int32)
    target = np.full((len(qs), width), PAD, np.int32)
    for i, (q, a) in enumerate(zip(qs, ans)):
        tape[i, : len(q)] = q
        target[i, : len(a)] = a
    return tape, target


def generate_tapes(
    train_max_len: int, test_max_len: int, num_train: int, num_test: int, seed: int = 0
) -> dict:
    """`algorithmic_multiplication` generated in memory (the examples `python -m lib.data
    prepare algorithmic_multiplication` with these options would store) as tapes.

    Returns `{split: (tape, target)}` for "train", "validation" (operands of
    1..train_max_len bits) and "test" (train_max_len+1..test_max_len bits)."""
    from lib.data.algorithmic import AlgorithmicMultiplication

    builder = AlgorithmicMultiplication(
        min_len=1, train_max_len=train_max_len, test_max_len=test_max_len, reverse_answer=True,
        num_train=num_train, num_validation=num_test, num_test=num_test, seed=seed,
    )  # fmt: skip
    out = {}
    for split, examples in builder._splits().items():  # in order: the splits share a filter
        exs = [ex for _, ex in examples]
        stacked = {k: np.stack([e[k] for e in exs]) for k in ("inputs", "targets", "mask")}
        out[split] = tapes_from_sequences(stacked["inputs"], stacked["targets"], stacked["mask"])
    return out


def sequence_accuracy(logits_BxWxV, target_BxW):
    """Fraction of tapes whose every cell (PAD cells included) is predicted exactly."""
    return jnp.mean(jnp.all(jnp.argmax(logits_BxWxV, -1) == target_BxW, axis=-1))


def tape_metrics(logits_BxWxV, target_BxW) -> dict:
    """`sequence_accuracy` (whole tapes right) and `cell_accuracy` (cells right)."""
    return {
        "sequence_accuracy": sequence_accuracy(logits_BxWxV, target_BxW),
        "cell_accuracy": jnp.mean(jnp.argmax(logits_BxWxV, -1) == target_BxW),
    }
