"""Tests for lib.nn.rnn and lib.nn.lmu mixers: registry, step == full, state, causality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn import lmu as lmu_nn
from lib.nn import rnn as rnn_nn
from lib.nn.registry import get_mixer

CASES = [
    ("lstm", {}),
    ("gru", {"hidden_dim": 6}),
    ("mingru", {}),
    ("mingru", {"method": "log", "hidden_dim": 12}),
    ("minlstm", {"method": "scan"}),
    ("egru", {"threshold_init": 0.05}),
    ("lmu", {"order": 6, "theta": 8.0}),
    ("lmu", {"order": 4, "theta": 5.0, "memory_dim": 3, "method": "fft"}),
]


def check_mixer(name, kwargs, *, dim=8, length=11, batch=2, atol=1e-5):
    """The protocol of lib/nn/registry.py: full call, state continuation, step, causality."""
    model = get_mixer(name)(dim=dim, **kwargs)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, length, dim))
    params = model.init(jax.random.PRNGKey(1), x)
    apply = jax.jit(model.apply, static_argnames=("return_state",))
    y = apply(params, x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    # a sequence split in two, the second half started from the first half's state
    y1, s = apply(params, x[:, :4], return_state=True)
    y2 = apply(params, x[:, 4:], s)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y, rtol=1e-4, atol=atol)
    # step by step from init_state
    state = model.apply(params, batch, method="init_state")
    step = jax.jit(lambda p, s, x_t: model.apply(p, s, x_t, method="step"))
    for t in range(length):
        state, y_t = step(params, state, x[:, t])
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-4, atol=atol)
    # causality: output t has zero gradient w.r.t. inputs after t
    t0 = length // 2
    g = jax.jit(jax.grad(lambda x: model.apply(params, x)[:, t0].sum()))(x)
    # (exact zeros for the recurrences; FFT round-off below 1e-6 for the LMU's fft form)
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
    params = model.init(jax.random.PRNGKey(1), x)
    ys = [lmu_nn.LMU(dim=8, order=8, theta=16.0, method=m).apply(params, x) for m in
          ("ref", "direct", "fft")]  # fmt: skip
    np.testing.assert_allclose(ys[1], ys[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ys[2], ys[0], rtol=1e-4, atol=1e-5)


def test_lstm_forget_bias_and_swapped_activation():
    model = rnn_nn.LSTM(dim=4, gate_fn=jax.nn.hard_sigmoid)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 5, 4))
    params = model.init(jax.random.PRNGKey(1), x)
    b = params["params"]["b_ih"]
    np.testing.assert_array_equal(b[4:8], 1.0)
    np.testing.assert_array_equal(jnp.concatenate([b[:4], b[8:]]), 0.0)
    y_hard = model.apply(params, x)
    y_soft = rnn_nn.LSTM(dim=4).apply(params, x)
    assert not np.allclose(y_hard, y_soft)


def test_egru_sows_activity_sparsity_and_trains_thresholds():
    model = rnn_nn.EGRU(dim=8, threshold_init=0.1)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 20, 8))
    params = model.init(jax.random.PRNGKey(1), x)
    _, aux = model.apply(params, x, mutable=["intermediates"])
    (sparsity,) = aux["intermediates"]["activity_sparsity"]
    assert 0.0 < float(sparsity) < 1.0
    g = jax.grad(lambda p: jnp.sum(model.apply(p, x) ** 2))(params)
    assert np.any(g["params"]["threshold"] != 0)


def test_bfloat16_inputs():
    model = rnn_nn.MinGRU(dim=8)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 8))
    params = model.init(jax.random.PRNGKey(1), x)
    y = model.apply(params, x)
    y_bf = model.apply(params, x.astype(jnp.bfloat16))
    assert np.all(np.isfinite(y_bf))  # float32 parameters promote the result to float32
    np.testing.assert_allclose(y_bf.astype(jnp.float32), y, atol=5e-2)
