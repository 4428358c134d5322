"""Tests for lib.nn.rnn.mixers and lib.nn.ssm.lmu mixers: registry, step == full, state, causality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.registry import get_mixer
from lib.nn.rnn import mixers as rnn_nn
from lib.nn.ssm import lmu as lmu_nn

CASES = [
    ("lstm", {}),
    ("gru", {"hidden_dim": 6}),
    ("mingru", {"hidden_dim": 12}),
    ("minlstm", {"method": "log"}),
    ("egru", {"threshold_init": 0.05}),
    ("lmu", {"order": 4, "theta": 5.0, "memory_dim": 3, "method": "fft"}),
]


def check_mixer(name, kwargs, *, dim=8, length=11, batch=2, atol=1e-5):
    """The protocol of lib/nn/registry.py: full call, state continuation, step, causality.

    Everything runs in one jitted function (one compile per case keeps the tests fast); the
    step form runs under `lax.scan`, starting from `init_state`.
    """
    model = get_mixer(name)(dim=dim, **kwargs)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, length, dim))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    t0 = length // 2

    @jax.jit
    def run(params, x):
        y = model.apply(params, x)
        y1, s = model.apply(params, x[:, :4], return_state=True)
        y2 = model.apply(params, x[:, 4:], s)
        s0 = model.apply(params, batch, method="init_state")
        step = lambda s, x_t: model.apply(params, s, x_t, method="step")
        _, ys = jax.lax.scan(step, s0, jnp.swapaxes(x, 0, 1))
        g = jax.grad(lambda x: model.apply(params, x)[:, t0].sum())(x)
        return y, jnp.concatenate([y1, y2], 1), jnp.swapaxes(ys, 0, 1), g

    y, y_split, y_step, g = run(params, x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    # a sequence split in two, the second part started from the first part's final state
    np.testing.assert_allclose(y_split, y, rtol=1e-4, atol=atol)
    # step by step from init_state
    np.testing.assert_allclose(y_step, y, rtol=1e-4, atol=atol)
    # causality: output t0 has zero gradient w.r.t. inputs after t0 (FFT round-off < 1e-6)
    assert np.all(np.abs(g[:, t0 + 1 :]) < 1e-6) and np.any(g[:, : t0 + 1] != 0)
    return model, params, x, y


@pytest.mark.parametrize("name,kwargs", CASES)
def test_mixer_protocol(name, kwargs):
    check_mixer(name, kwargs)


def test_registered_classes():
    assert get_mixer("lstm") is rnn_nn.LSTM and get_mixer("egru") is rnn_nn.EGRU
    assert get_mixer("minlstm") is rnn_nn.MinLSTM and get_mixer("mingru") is rnn_nn.MinGRU
    assert get_mixer("gru") is rnn_nn.GRU
    assert get_mixer("lmu") is lmu_nn.LMU


def test_lmu_forms_agree():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 40, 8))
    model = lmu_nn.LMU(dim=8, order=8, theta=16.0)
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    run = jax.jit(lambda p: [lmu_nn.LMU(8, order=8, theta=16.0, method=m).apply(p, x)
                             for m in ("ref", "direct")])  # fmt: skip
    y_ref, y_direct = run(params)
    np.testing.assert_allclose(y_direct, y_ref, rtol=1e-4, atol=1e-5)


def test_lstm_forget_bias_and_swapped_activation():
    model = rnn_nn.LSTM(dim=4, gate_fn=jax.nn.hard_sigmoid)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 5, 4))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    b = params["params"]["b_ih"]
    np.testing.assert_array_equal(b[4:8], 1.0)
    np.testing.assert_array_equal(jnp.concatenate([b[:4], b[8:]]), 0.0)
    y_hard, y_soft = jax.jit(lambda p: (model.apply(p, x), rnn_nn.LSTM(dim=4).apply(p, x)))(params)
    assert not np.allclose(y_hard, y_soft)


def test_egru_sows_activity_sparsity_and_trains_thresholds():
    model = rnn_nn.EGRU(dim=8, threshold_init=0.1)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 20, 8))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    _, aux = jax.jit(lambda p: model.apply(p, x, mutable=["intermediates"]))(params)
    (sparsity,) = aux["intermediates"]["activity_sparsity"]
    assert 0.0 < float(sparsity) < 1.0
    g = jax.jit(jax.grad(lambda p: jnp.sum(model.apply(p, x) ** 2)))(params)
    assert np.any(g["params"]["threshold"] != 0)
