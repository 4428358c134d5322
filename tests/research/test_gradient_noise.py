"""Adding gradient noise (Neelakantan et al. 2015): the poor inits, a smoke run, the mechanism."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lib.train.fit import make_fit, softmax_cross_entropy
from lib.train.noise import with_gradient_noise
from research.gradient_noise.model import DeepReLUNet, zero_init_gradients_vanish
from research.self_normalizing.data import load_arrays


def test_zero_init_has_exactly_zero_hidden_gradients():
    x = jax.random.normal(jax.random.key(0), (16, 64))
    y = jnp.arange(16) % 10
    assert zero_init_gradients_vanish(DeepReLUNet(10, 20, 50, "zero"), x, y)
    assert not zero_init_gradients_vanish(DeepReLUNet(10, 20, 50, "he"), x, y)


def test_simple_init_signal_vanishes_over_20_layers():
    """N(0, 0.1^2) weights with 50 units scale the signal by ~0.5 per layer: ~1e-6 after 20."""
    x = jax.random.normal(jax.random.key(1), (64, 64))
    model = DeepReLUNet(10, 20, 50, "simple")
    v = model.init(jax.random.key(2), x)
    h = x
    for i in range(20):
        p = v["params"][f"dense_{i}"]
        h = jax.nn.relu(h @ p["kernel"] + p["bias"])
    assert float(h.std()) < 1e-4 * float(x.std())
    with pytest.raises(ValueError, match="init_scheme"):
        DeepReLUNet(10, 2, 4, "bogus").init(jax.random.key(0), x)


@pytest.mark.claim
def test_smoke_launch_and_run(tmp_path):
    """The restart sweep through lib.train.fit (per-seed outputs, results.json), and one noisy
    net as a run through launch.train (the noise from `optimizer.gradient_noise_eta`, kept in
    the checkpoint: a second call resumes at the end)."""
    from launch.gradient_noise import run as sweep
    from launch.train import run
    from research.gradient_noise.configs.default import get_config

    c = get_config("smoke")
    rows = sweep(c, str(tmp_path / "sweep"))["noise_sweep"]
    assert [r["eta"] for r in rows] == [0.0, 0.01]
    assert all(np.isfinite(r["test_acc_mean"]) for r in rows)
    for name in ("metrics.jsonl", "curves.png", "final_metrics.json"):
        assert (tmp_path / "sweep" / "simple_eta0.01" / "seed1" / name).exists(), name
    assert (tmp_path / "sweep" / "results.json").exists()
    c.optimizer.gradient_noise_eta = 0.01
    r = run(c, str(tmp_path / "run"))
    for name in ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert r["step"] == 20 and 0.0 <= r["test_accuracy"] <= 1.0
    assert run(c, str(tmp_path / "run"))["step"] == 20


def test_noise_moves_zero_init_weights_plain_sgd_never_does():
    """The mechanism: from an all-zero init SGD never moves a hidden weight (exactly zero
    gradients), so the net stays at chance; annealed noise breaks the symmetry. (The full claim,
    training a 20-layer net from a poor init, needs thousands of steps: see the README.)"""
    data = tuple(jnp.asarray(a) for a in load_arrays("digits")[:4])
    model = DeepReLUNet(10, depth=2, width=50, init_scheme="zero")
    for eta in (0.0, 0.01):
        tx = with_gradient_noise(optax.sgd(0.1), eta, 0.55)
        fit = make_fit(model, tx, softmax_cross_entropy, steps=20, batch_size=32)
        r = fit(jax.random.key(0), *data)
        hidden = [r["variables"]["params"][f"dense_{i}"]["kernel"] for i in range(2)]
        if eta == 0.0:
            assert all(bool(jnp.all(w == 0)) for w in hidden)
            assert float(r["test_accuracy"]) < 0.2
        else:
            # Noise alone: 20 steps of std sqrt(0.01 / (1 + t)^0.55) * lr per entry.
            stds = [float(w.std()) for w in hidden]
            assert all(0.01 < s < 0.1 for s in stds), stds


def test_tapes_from_a_hand_built_multiplication():
    """5 * 3 in binary: question 101*11, answer 15 = 1111 (LSB first) then EOS, on tapes of 6."""
    from research.gradient_noise.multiplication import tapes_from_sequences

    one, zero, times, sep, eos = 6, 5, 4, 1, 2
    seq = [one, zero, one, times, one, one, sep, one, one, one, one, eos]
    inputs = np.array([seq[:-1] + [0]])
    targets = np.array([seq[1:] + [0]])
    mask = np.zeros_like(inputs, np.float32)
    mask[0, 6:11] = 1  # the answer and EOS, as lib.data marks them
    tape, target = tapes_from_sequences(inputs, targets, mask)
    np.testing.assert_array_equal(tape, [[one, zero, one, times, one, one]])
    np.testing.assert_array_equal(target, [[one, one, one, one, eos, 0]])
    with pytest.raises(ValueError, match="width"):
        tapes_from_sequences(inputs, targets, mask, width=4)


def test_neural_gpu_crosses_the_tape_only_with_enough_steps():
    """Two width-3 ConvGRUs move information two cells per step: on a tape of 8, the first
    cell's output depends on the last input after ceil(0.5 * 8) = 4 steps, not after 1."""
    from research.gradient_noise.multiplication import NeuralGPU

    tape = jnp.array([[5, 6, 5, 4, 6, 6, 5, 6]])

    def first_cell_grad(step_ratio):
        model = NeuralGPU(vocab_size=7, channels=4, step_ratio=step_ratio)
        # Token 3 sits only in the last cell: the gradient of cell 0's logits with respect to
        # its embedding row is the dependence of cell 0 on the last cell.
        tape3 = tape.at[0, -1].set(3)
        params = jax.jit(model.init)(jax.random.key(0), tape3)["params"]

        def cell0(emb):
            p = {**params, "embed": {"embedding": emb}}
            return model.apply({"params": p}, tape3)[0, 0].sum()

        return jax.jit(jax.grad(cell0))(params["embed"]["embedding"])[3]

    assert float(jnp.abs(first_cell_grad(0.5)).max()) > 0
    assert float(jnp.abs(first_cell_grad(1 / 8)).max()) == 0.0


def test_tape_conv_is_a_same_convolution():
    """The einsum form of the Neural GPU's convolution equals `nn.Conv(..., padding="SAME")`
    with the same parameters, and rejects an even kernel."""
    import flax.linen as nn

    from research.gradient_noise.multiplication import TapeConv

    x = jax.random.normal(jax.random.key(0), (2, 7, 3))
    ours = TapeConv(5, 3, nn.initializers.normal(1.0))
    params = ours.init(jax.random.key(1), x)
    want = nn.Conv(5, (3,), padding="SAME").apply(params, x)
    np.testing.assert_allclose(ours.apply(params, x), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        TapeConv(5, 2).init(jax.random.key(1), x)


@pytest.mark.claim
def test_multiplication_smoke_launch():
    from launch.gradient_noise import run
    from research.gradient_noise.configs.multiplication import get_config

    rows = run(get_config("smoke"), None)["multiplication"]
    assert [r["eta"] for r in rows] == [0.0, 0.01]
    assert all(0.0 <= r["val_seq_acc_mean"] <= 1.0 and r["diverged"] == 0 for r in rows)


def test_noise_enters_make_optimizer_after_the_clip():
    """`optimizer.gradient_noise_eta` chains clip -> noise -> optimizer: a zero gradient
    becomes N(0, eta) noise at step 0 (not clipped away by a tiny clip norm)."""
    import ml_collections

    from lib.train.optim import make_optimizer

    cfg = ml_collections.ConfigDict(dict(name="sgd", learning_rate=1.0, schedule="constant",
                                         grad_clip_norm=1e-6, gradient_noise_eta=0.25))  # fmt: skip
    tx = make_optimizer(cfg, 10)
    params = {"w": jnp.zeros(20_000)}
    updates, _ = tx.update({"w": jnp.zeros(20_000)}, tx.init(params), params)
    assert float(jnp.std(updates["w"])) == pytest.approx(0.5, rel=0.03)
