"""Tests for lib.nn.spiking.layers and lib.nn.spiking.mixer: step == full, gradients, the mixer wrapper."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.registry import get_mixer, register_mixer
from lib.nn.spiking import layers as snn
from lib.nn.spiking.mixer import SpikingMixer
from lib.ops.spiking.core import lif
from lib.ops.spiking.neurons import leaky_integrator


def _x(shape, seed=0, scale=1.0, shift=0.5):
    return jax.random.normal(jax.random.PRNGKey(seed), shape) * scale + shift


def test_lif_neuron_module_matches_op_and_step():
    x = _x((2, 9, 5))
    mod = snn.LIFNeuron(beta=0.8, reset="zero", surrogate="arctan")
    params = mod.init(jax.random.PRNGKey(0), x)
    y, v = mod.apply(params, x, return_state=True)
    np.testing.assert_array_equal(y, lif(x, beta=0.8, reset="zero", surrogate="arctan"))
    state = mod.init_state(2, 5)
    step = jax.jit(lambda p, s, x_t: mod.apply(p, s, x_t, method="step"))
    for t in range(9):
        state, s = step(params, state, x[:, t])
        np.testing.assert_array_equal(s, y[:, t])
    np.testing.assert_allclose(state, v, rtol=1e-6)


def test_learnable_beta_gets_gradient():
    x = _x((2, 7, 4))
    mod = snn.LIFNeuron(beta=0.7, learn_beta=True)
    params = mod.init(jax.random.PRNGKey(0), x)
    np.testing.assert_allclose(jax.nn.sigmoid(params["params"]["decay_logit"]), 0.7, rtol=1e-5)
    g = jax.grad(lambda p: mod.apply(p, x).sum())(params)
    assert np.any(np.abs(np.asarray(g["params"]["decay_logit"])) > 0)


def test_spiking_dense_step_equals_full():
    x = _x((3, 8, 6))
    mod = snn.SpikingDense(features=5, beta=0.85)
    params = mod.init(jax.random.PRNGKey(1), x)
    y = mod.apply(params, x)
    assert y.shape == (3, 8, 5)
    state = mod.init_state(3)
    step = jax.jit(lambda p, s, x_t: mod.apply(p, s, x_t, method="step"))
    for t in range(8):
        state, s = step(params, state, x[:, t])
        np.testing.assert_array_equal(s, y[:, t])


def test_spiking_conv_equals_conv_then_lif():
    x = (jax.random.uniform(jax.random.PRNGKey(2), (2, 5, 6, 6, 3)) < 0.3).astype(jnp.float32)
    mod = snn.SpikingConv(features=4, kernel_size=(3, 3), strides=2, beta=0.9, threshold=0.5)
    params = mod.init(jax.random.PRNGKey(3), x)
    y = mod.apply(params, x)
    assert y.shape == (2, 5, 3, 3, 4)
    conv = nn.Conv(4, (3, 3), 2, "SAME", use_bias=False)
    conv_params = {"params": params["params"]["Conv_0"]}
    current = jax.vmap(lambda x_t: conv.apply(conv_params, x_t), in_axes=1, out_axes=1)(x)
    np.testing.assert_array_equal(y, lif(current, beta=0.9, threshold=0.5))


def test_spiking_mlp_step_equals_full_and_returns_spikes():
    x = (jax.random.uniform(jax.random.PRNGKey(4), (2, 6, 8)) < 0.5).astype(jnp.float32)
    mod = snn.SpikingMLP(hidden=(16, 12), num_classes=3, readout="mean_membrane")
    params = mod.init(jax.random.PRNGKey(5), x)
    logits, spikes = mod.apply(params, x, return_spikes=True)
    assert logits.shape == (2, 3) and set(spikes) == {"input", "hidden0", "hidden1"}
    state, outs = mod.init_state(2), []
    step = jax.jit(lambda p, s, x_t: mod.apply(p, s, x_t, method="step"))
    for t in range(6):
        state, v_out = step(params, state, x[:, t])
        outs.append(v_out)
    np.testing.assert_allclose(jnp.stack(outs, 1).mean(1), logits, rtol=1e-5, atol=1e-6)
    # the output layer is a leaky integrator of the head's current
    head = params["params"]["head"]
    v = leaky_integrator(spikes["hidden1"] @ head["kernel"] + head["bias"], beta=mod.out_beta)
    np.testing.assert_allclose(v.mean(1), logits, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("connect", ["add", "and", "iand"])
def test_sew_residual_block(connect):
    s = (jax.random.uniform(jax.random.PRNGKey(6), (2, 5, 8)) < 0.4).astype(jnp.float32)
    mod = snn.SpikingResidualBlock(connect=connect, threshold=0.3)
    params = mod.init(jax.random.PRNGKey(7), s)
    out = mod.apply(params, s)
    assert out.shape == s.shape
    if connect == "add":
        assert np.all(np.asarray(out) >= np.asarray(s))
    else:  # AND / IAND can only remove input spikes
        assert np.all(np.asarray(out) <= np.asarray(s))
    if connect == "add":  # one gradient check is enough: the connect is elementwise
        g = jax.grad(lambda p: mod.apply(p, s).sum())(params)
        assert any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(g))


def test_sew_conv_block_and_bad_connect():
    s = (jax.random.uniform(jax.random.PRNGKey(8), (1, 3, 4, 4, 2)) < 0.5).astype(jnp.float32)
    mod = snn.SpikingResidualBlock(kernel_size=(3, 3))
    assert mod.apply(mod.init(jax.random.PRNGKey(0), s), s).shape == s.shape
    with pytest.raises(ValueError, match="connect"):
        snn.SpikingResidualBlock(connect="or").init(jax.random.PRNGKey(0), s)


# ------------------------------------------------------------------ spiking mixer wrapper


@register_mixer("_test_leaky_mix")
class LeakyMix(nn.Module):
    """A tiny causal mixer for the tests: Dense then a leaky running average."""

    dim: int
    decay: float = 0.5

    def setup(self):
        self.proj = nn.Dense(self.dim)

    def __call__(self, x, state=None, return_state=False):
        h0 = jnp.zeros((x.shape[0], self.dim)) if state is None else state
        y, h = leaky_integrator(self.proj(x), beta=self.decay, v0=h0, return_final_state=True)
        return (y, h) if return_state else y

    def init_state(self, batch_size, dtype=jnp.float32):
        return jnp.zeros((batch_size, self.dim), jnp.float32)

    def step(self, state, x_t):
        h = self.decay * state + self.proj(x_t)
        return h, h


@pytest.mark.parametrize("inner", ["_test_leaky_mix", "attention"])
def test_spiking_mixer_step_equals_full(inner):
    assert get_mixer("spiking") is SpikingMixer
    kw = {"num_heads": 2, "max_len": 16} if inner == "attention" else {}
    mod = SpikingMixer(dim=8, mixer=inner, mixer_kwargs=kw, threshold=0.5)
    x = _x((2, 7, 8), seed=9)
    params = mod.init(jax.random.PRNGKey(10), x)
    y_stateless = mod.apply(params, x)
    y, final = mod.apply(params, x, return_state=True)
    np.testing.assert_allclose(y, y_stateless, atol=1e-6)
    assert set(np.unique(np.asarray(y))) <= {0.0, 1.0} and y.sum() > 0
    state = mod.apply(params, 2, method="init_state")
    step = jax.jit(lambda p, s, x_t: mod.apply(p, s, x_t, method="step"))
    for t in range(7):
        state, y_t = step(params, state, x[:, t])
        np.testing.assert_allclose(y_t, y[:, t], atol=1e-6)
    np.testing.assert_allclose(state.v_in, final.v_in, rtol=1e-5, atol=1e-6)


def test_spiking_mixer_is_causal_and_trainable():
    mod = SpikingMixer(dim=6, mixer="_test_leaky_mix", spike_output=False, threshold=0.3)
    x = _x((1, 9, 6), seed=11)
    params = mod.init(jax.random.PRNGKey(12), x)
    g, gp = jax.jit(
        lambda p, x: (
            jax.grad(lambda x: mod.apply(p, x)[:, 4].sum())(x),
            jax.grad(lambda p: mod.apply(p, x).sum())(p),
        )
    )(params, x)
    assert np.all(np.asarray(g[:, 5:]) == 0) and np.any(np.asarray(g[:, :5]) != 0)
    assert any(np.any(np.asarray(leaf) != 0) for leaf in jax.tree.leaves(gp))
    with pytest.raises(ValueError, match="itself"):
        SpikingMixer(dim=6, mixer="spiking").init(jax.random.PRNGKey(0), x)


def test_delayed_dense_module_rounds_learns_and_streams():
    from lib.nn.spiking.delays import DelayedDense
    from lib.ops.spiking.delays import dcls_sigma, delay_shift

    x = jax.random.normal(jax.random.PRNGKey(13), (2, 20, 3))
    mod = DelayedDense(features=2, max_delay=6, use_bias=True)
    params = mod.init(jax.random.PRNGKey(14), x)
    p = params["params"]
    assert p["positions"].shape == (3, 2) and np.all((0 <= p["positions"]) & (p["positions"] <= 6))
    # rounded: y = sum_i W[i, o] x[t - round(P[i, o]), i] + b
    y = mod.apply(params, x, rounded=True)
    d = np.round(np.asarray(p["positions"])).astype(int)
    want = sum(
        np.asarray(delay_shift(x[:, :, i : i + 1], jnp.array([d[i, o]])))[..., 0]
        * float(p["kernel"][i, o])
        for i in range(3)
        for o in [0]
    )
    np.testing.assert_allclose(y[..., 0], want + float(p["bias"][0]), rtol=1e-5, atol=1e-5)
    # gradients reach the positions while sigma > 0
    g = jax.jit(jax.grad(lambda q: mod.apply(q, x, sigma=dcls_sigma(0, 10, 3.0)).sum()))(params)
    assert np.any(np.asarray(g["params"]["positions"]) != 0)
    # streaming (rounded) equals the full rounded layer
    state = mod.init_state(2, 3)
    step = jax.jit(lambda p, s, x_t: mod.apply(p, s, x_t, method="step"))
    for t in range(20):
        state, y_t = step(params, state, x[:, t])
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-5)


def test_every_registered_mixer_accepts_spiking_activations():
    """Every registered mixer can be wrapped: init, full call, init_state and step all trace
    with the right shapes (jax.eval_shape: tracing only, no compilation)."""
    import lib.nn.all_mixers  # noqa: F401  (registers every mixer)
    from lib.nn.registry import MIXERS

    names = sorted(n for n in MIXERS if n != "spiking" and not n.startswith("_test"))
    assert names, "no mixers registered"
    x = jax.ShapeDtypeStruct((2, 6, 16), jnp.float32)
    x_t = jax.ShapeDtypeStruct((2, 16), jnp.float32)
    for name in names:
        mod = SpikingMixer(dim=16, mixer=name)
        params = jax.eval_shape(mod.init, jax.random.PRNGKey(0), x)
        call = functools.partial(mod.apply, return_state=True)
        y, state = jax.eval_shape(call, params, x)
        assert y.shape == x.shape, name
        init_state = functools.partial(mod.apply, batch_size=2, method="init_state")
        state0 = jax.eval_shape(init_state, params)
        assert jax.tree.structure(state0) == jax.tree.structure(state), name
        step = functools.partial(mod.apply, method="step")
        _, y_t = jax.eval_shape(step, params, state0, x_t)
        assert y_t.shape == (2, 16), name
