"""End to end: a 2-layer LIF network trained with surrogate gradients on rate-coded sklearn
digits reaches >= 90% test accuracy (BPTT), and trains with online SLTT too."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from lib.nn.spiking.layers import SpikingMLP
from lib.ops.spiking.encode import rate_bernoulli
from lib.ops.spiking.metrics import dense_fan_out, spiking_metrics
from lib.ops.spiking.sltt import sltt_value_and_grad

T = 10


def _digits():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)  # pixel intensity -> firing probability per step
    return train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def _train(model, grad_fn, epochs, lr=5e-3, batch=64, seed=0):
    x_tr, x_te, y_tr, y_te = _digits()
    rng = jax.random.PRNGKey(seed)
    params = model.init(rng, jnp.zeros((1, T, 64)))
    opt = optax.adam(lr)
    opt_state = opt.init(params)

    @jax.jit
    def train_step(params, opt_state, rng, x, y):
        loss, grads = grad_fn(params, rate_bernoulli(rng, x, T), y)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for epoch in range(epochs):
        perm = np.random.RandomState(epoch).permutation(len(x_tr))
        for i in range(0, len(x_tr) - batch + 1, batch):
            rng, key = jax.random.split(rng)
            idx = perm[i : i + batch]
            params, opt_state, loss = train_step(params, opt_state, key, x_tr[idx], y_tr[idx])
    assert np.isfinite(float(loss))
    spikes_te = rate_bernoulli(jax.random.PRNGKey(123), x_te, T)
    logits, spikes = jax.jit(lambda p, s: model.apply(p, s, return_spikes=True))(params, spikes_te)
    accuracy = float(jnp.mean(jnp.argmax(logits, -1) == y_te))
    return accuracy, spikes


def test_lif_mlp_bptt_reaches_90_percent_on_digits():
    model = SpikingMLP(hidden=(128,), num_classes=10, beta=0.9, out_beta=0.9)

    def bptt(params, spikes, y):
        def loss_fn(p):
            logits = model.apply(p, spikes)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        return jax.value_and_grad(loss_fn)(params)

    accuracy, spikes = _train(model, bptt, epochs=8)
    assert accuracy >= 0.90, accuracy
    assert model.fan_out() == {"input": dense_fan_out(128), "hidden0": dense_fan_out(10)}
    m = spiking_metrics(spikes, model.fan_out())
    assert 0.0 < float(m["firing_rate/hidden0"]) < 0.6  # alive, and sparse
    assert float(m["synops/total"]) > 0


@pytest.mark.slow
def test_lif_mlp_sltt_trains_on_digits():
    """Online SLTT (per-step loss on the output membrane, state detached) also learns."""
    model = SpikingMLP(hidden=(128,), num_classes=10, beta=0.9, out_beta=0.9)

    def sltt(params, spikes, y):
        def step_loss(p, state, x_t):
            state, v_out = model.apply(p, state, x_t, method="step")
            ce = optax.softmax_cross_entropy_with_integer_labels(v_out, y).mean()
            return ce / T, state

        state0 = model.init_state(spikes.shape[0])
        return sltt_value_and_grad(step_loss, params, state0, spikes)

    accuracy, _ = _train(model, sltt, epochs=8)
    assert accuracy >= 0.85, accuracy
