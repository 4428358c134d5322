"""Binary multiplication with and without annealed gradient noise (Neelakantan et al. 2015, the
Neural GPU experiment), at toy scale: success rate over random restarts.

The paper trains Neural GPUs (Kaiser & Sutskever 2016) on binary multiplication over ~7,000
random restarts and counts the accurate models: annealed gradient noise doubles that count. Here
a small Neural GPU (a stack of convolutional GRUs applied once per tape cell, weights shared over
steps) reads the question `a * b` from a tape and writes the product, least-significant bit
first, onto the same tape. All restarts of one setting train at once (one vmapped, jitted
`lax.scan`), so a seed sweep is one compile.

Data: `lib.data` `algorithmic_multiplication`; the question tokens (before SEP) become the input
tape and the answer tokens + EOS the target tape, both padded with PAD to the tape width.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from lib.train.noise import reseed_noise, with_gradient_noise


class ConvGRU(nn.Module):
    """One convolutional GRU of the Neural GPU: `s <- u * s + (1 - u) * tanh(conv(r * s))`,
    with gates `u, r = sigmoid(conv(s))`; `s: [b, width, channels]` (a 1-D tape)."""

    channels: int
    kernel: int = 3

    @nn.compact
    def __call__(self, s_BxWxC):
        conv = lambda name, bias=0.0: nn.Conv(  # noqa: E731
            self.channels,
            (self.kernel,),
            padding="SAME",
            bias_init=nn.initializers.constant(bias),
            name=name,
        )
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
        cells = [ConvGRU(self.channels, self.kernel, name=f"cgru_{i}") for i in range(self.layers)]
        for _ in range(max(1, math.ceil(self.step_ratio * tape_BxW.shape[1]))):
            for cell in cells:
                s = cell(s)
        return nn.Dense(self.vocab_size, name="head")(s)


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


def load_tapes(train_max_len: int, test_max_len: int, num_train: int, num_test: int, seed=0):
    """Prepare (if needed, with these options) and read `algorithmic_multiplication` as tapes.

    Returns `{split: (tape, target)}` for "train", "validation" (operands of 1..train_max_len
    bits) and "test" (train_max_len+1..test_max_len bits)."""
    import lib.data

    name = "algorithmic_multiplication"
    kwargs = dict(
        min_len=1, train_max_len=train_max_len, test_max_len=test_max_len, reverse_answer=True,
        num_train=num_train, num_validation=num_test, num_test=num_test, seed=seed,
    )  # fmt: skip
    prepared = lib.data.registry.is_prepared(name)
    if not prepared or any(
        lib.data.info(name).get("config", {}).get(k) != v for k, v in kwargs.items()
    ):
        lib.data.prepare(name, overwrite=prepared, **kwargs)
    out = {}
    for split in ("train", "validation", "test"):
        n = lib.data.info(name)["splits"][split]
        batch = next(iter(lib.data.load(name, split, batch_size=n, shuffle=False, num_epochs=1)))
        out[split] = tapes_from_sequences(batch["inputs"], batch["targets"], batch["mask"])
    return out


def sequence_accuracy(logits_BxWxV, target_BxW):
    """Fraction of tapes whose every cell (PAD cells included) is predicted exactly."""
    return jnp.mean(jnp.all(jnp.argmax(logits_BxWxV, -1) == target_BxW, axis=-1))


def make_fit(model: NeuralGPU, tx: optax.GradientTransformation, *, steps: int, batch_size: int):
    """A jitted `fit(key, train, validation, test) -> dict` (each split a `(tape, target)` pair):
    init, `steps` minibatch updates (cross-entropy over all tape cells), then the per-cell and
    whole-tape accuracies on each split (train included) and the training-loss curve."""

    def loss_of(params, tape, target):
        logits = model.apply({"params": params}, tape)
        return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()

    def fit(key, train, validation, test):
        k_init, k_data, k_noise = jax.random.split(key, 3)
        params = model.init(k_init, train[0][:2])["params"]
        opt_state = reseed_noise(tx.init(params), k_noise)
        n = train[0].shape[0]

        def step(carry, i):
            params, opt_state = carry
            idx = jax.random.randint(jax.random.fold_in(k_data, i), (batch_size,), 0, n)
            loss, g = jax.value_and_grad(loss_of)(params, train[0][idx], train[1][idx])
            upd, opt_state = tx.update(g, opt_state, params)
            return (optax.apply_updates(params, upd), opt_state), loss

        (params, _), losses = jax.lax.scan(step, (params, opt_state), jnp.arange(steps))
        out = {"loss": losses}
        for name, (tape, target) in (("train", train), ("validation", validation), ("test", test)):
            logits = model.apply({"params": params}, tape)
            out[f"{name}_sequence_accuracy"] = sequence_accuracy(logits, target)
            out[f"{name}_cell_accuracy"] = jnp.mean(jnp.argmax(logits, -1) == target)
        return out

    return jax.jit(fit)


def multiplication_sweep(
    etas,
    gamma: float,
    train_max_len: int,
    test_max_len: int,
    num_train: int,
    num_test: int,
    channels: int,
    layers: int,
    step_ratio: float,
    steps: int,
    batch_size: int,
    learning_rate: float,
    clip_norm: float | None,
    seeds: int,
    success_accuracy: float,
) -> list[dict]:
    """Train `seeds` restarts per noise variance `eta` (0 = no noise) with Adam; one row per eta:
    success rate (validation whole-tape accuracy >= `success_accuracy`), the same on the longer
    test operands, mean/best accuracies and the number of diverged runs."""
    data = load_tapes(train_max_len, test_max_len, num_train, num_test)
    data = {k: tuple(jnp.asarray(a) for a in v) for k, v in data.items()}
    from lib.data.algorithmic import DIGIT0

    # Tokens: PAD, SEP, EOS, PLUS, TIMES, then the binary digits 0 and 1.
    model = NeuralGPU(DIGIT0 + 2, channels=channels, layers=layers, step_ratio=step_ratio)
    keys = jax.vmap(jax.random.key)(jnp.arange(seeds))
    rows = []
    for eta in etas:
        tx = with_gradient_noise(optax.adam(learning_rate), float(eta), gamma, clip_norm=clip_norm)
        fit = make_fit(model, tx, steps=steps, batch_size=batch_size)
        res = jax.jit(jax.vmap(fit, in_axes=(0, None, None, None)))(
            keys, data["train"], data["validation"], data["test"]
        )
        res = jax.tree.map(np.asarray, res)
        val, test = res["validation_sequence_accuracy"], res["test_sequence_accuracy"]
        final_loss = res["loss"][:, -max(steps // 10, 1) :].mean(1)
        rows.append(
            {
                "eta": float(eta),
                "success_rate": float(np.mean(val >= success_accuracy)),
                "successes": f"{int(np.sum(val >= success_accuracy))}/{seeds}",
                "val_seq_acc_mean": float(val.mean()),
                "val_seq_acc_best": float(val.max()),
                "val_cell_acc_mean": float(res["validation_cell_accuracy"].mean()),
                "train_seq_acc_mean": float(res["train_sequence_accuracy"].mean()),
                "train_seq_acc_best": float(res["train_sequence_accuracy"].max()),
                "test_success_rate": float(np.mean(test >= success_accuracy)),
                "test_seq_acc_mean": float(test.mean()),
                "test_seq_acc_best": float(test.max()),
                "per_seed_val_seq_acc": [round(float(v), 3) for v in val],
                "diverged": int((~np.isfinite(final_loss)).sum()),
            }
        )
    return rows
