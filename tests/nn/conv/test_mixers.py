"""Tests for lib.nn.conv.mixers: fsmn, tcn, long_conv (registry protocol, step, causality)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.conv import mixers as conv_mixers
from lib.nn.registry import get_mixer

CASES = [
    ("fsmn", {"num_taps": 4, "dilation": 2}),
    ("tcn", {"kernel_size": 3, "num_layers": 3}),
    ("long_conv", {"max_len": 16, "kernel": "explicit"}),
    ("long_conv", {"max_len": 6, "kernel": "implicit", "method": "direct"}),
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
    assert get_mixer("fsmn") is conv_mixers.FSMN
    assert get_mixer("tcn") is conv_mixers.TCN
    assert get_mixer("long_conv") is conv_mixers.LongConv


def test_bidirectional_fsmn_sees_the_future_and_has_no_step():
    model = conv_mixers.FSMN(dim=4, num_taps=3, lookahead=2)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 10, 4))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    g = jax.jit(jax.grad(lambda x: model.apply(params, x)[:, 4].sum()))(x)
    assert np.any(g[:, 6] != 0) and np.all(g[:, 7:] == 0)
    with pytest.raises(ValueError, match="lookahead"):
        model.apply(params, model.init_state(1), x[:, 0], method="step")


def test_long_conv_kernel_longer_than_sequence_and_bad_kernel_name():
    model = conv_mixers.LongConv(dim=4, max_len=64, kernel="explicit")
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 4))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    ref_model = conv_mixers.LongConv(dim=4, max_len=64, kernel="explicit", method="ref")
    y_fft, y_ref = jax.jit(lambda p: (model.apply(p, x), ref_model.apply(p, x)))(params)
    np.testing.assert_allclose(y_fft, y_ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        conv_mixers.LongConv(dim=4, kernel="fourier").init(jax.random.PRNGKey(0), x)


def test_tcn_receptive_field():
    """Output t depends on exactly the last 1 + (K-1)(2^n - 1) inputs."""
    model = conv_mixers.TCN(dim=2, kernel_size=2, num_layers=3)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 2))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)
    g = jax.jit(jax.grad(lambda x: model.apply(params, x)[:, 15].sum()))(x)
    reach = np.nonzero(np.abs(g[0]).sum(-1))[0]
    assert reach.min() == 15 - 7 and reach.max() == 15
