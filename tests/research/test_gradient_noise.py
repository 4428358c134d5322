"""Adding gradient noise (Neelakantan et al. 2015): the poor inits, a smoke run, the mechanism."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lib.train.noise import with_gradient_noise
from research.gradient_noise.model import DeepReLUNet, zero_init_gradients_vanish
from research.self_normalizing.data import load_arrays
from research.self_normalizing.fit import make_fit, softmax_cross_entropy


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


def test_smoke_launch():
    from launch.gradient_noise import run
    from research.gradient_noise.configs.default import get_config

    rows = run(get_config("smoke"))["noise_sweep"]
    assert [r["eta"] for r in rows] == [0.0, 0.01]
    assert all(np.isfinite(r["test_acc_mean"]) for r in rows)


def test_noise_moves_zero_init_weights_plain_sgd_never_does():
    """The mechanism: from an all-zero init SGD never moves a hidden weight (exactly zero
    gradients), so the net stays at chance; annealed noise breaks the symmetry. (The full claim,
    training a 20-layer net from a poor init, needs thousands of steps: see the README.)"""
    data = tuple(jnp.asarray(a) for a in load_arrays("digits")[:4])
    model = DeepReLUNet(10, depth=4, width=50, init_scheme="zero")
    for eta in (0.0, 0.01):
        tx = with_gradient_noise(optax.sgd(0.1), eta, 0.55)
        fit = make_fit(model, tx, softmax_cross_entropy, steps=20, batch_size=32)
        r = fit(jax.random.key(0), *data)
        hidden = [r["variables"]["params"][f"dense_{i}"]["kernel"] for i in range(4)]
        if eta == 0.0:
            assert all(bool(jnp.all(w == 0)) for w in hidden)
            assert float(r["test_accuracy"]) < 0.2
        else:
            # Noise alone: 20 steps of std sqrt(0.01 / (1 + t)^0.55) * lr per entry.
            stds = [float(w.std()) for w in hidden]
            assert all(0.01 < s < 0.1 for s in stds), stds
