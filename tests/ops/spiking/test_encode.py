"""Tests for lib.ops.spiking.encode (encoders, readouts) and lib.ops.spiking.metrics."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.spiking import encode as enc
from lib.ops.spiking import metrics as sm


def test_rate_bernoulli_statistics():
    p = jnp.array([[0.0, 0.2, 0.7, 1.0, 1.5]])
    s = enc.rate_bernoulli(jax.random.PRNGKey(0), jnp.tile(p, (50, 1)), 200)
    assert s.shape == (50, 200, 5)
    assert set(np.unique(np.asarray(s))) <= {0.0, 1.0}
    rates = np.asarray(s.mean((0, 1)))
    np.testing.assert_allclose(rates, [0.0, 0.2, 0.7, 1.0, 1.0], atol=0.01)


def test_rate_poisson_statistics():
    rate = jnp.full((20, 3), 1.0) * jnp.array([0.0, 100.0, 2000.0])  # Hz
    key = jax.random.PRNGKey(1)
    counts = enc.rate_poisson(key, rate, 500, dt=1e-3, max_count=100)
    np.testing.assert_allclose(counts.mean((0, 1)), [0, 0.1, 2.0], rtol=0.03, atol=0.01)
    # binary spikes (max_count=1): P(at least one spike) = 1 - exp(-rate dt)
    s = enc.rate_poisson(key, rate, 500, dt=1e-3)
    np.testing.assert_array_equal(s, np.minimum(np.asarray(counts), 1))
    np.testing.assert_allclose(s.mean((0, 1)), 1 - np.exp(-np.array([0, 0.1, 2.0])), atol=0.01)


def test_latency_linear_and_log():
    x = jnp.array([[1.0, 0.5, 0.0, 0.25]])
    s = enc.latency(x, 9)
    assert s.shape == (1, 9, 4)
    np.testing.assert_array_equal(s.sum(1), [[1, 1, 0, 1]])  # 0 is below the threshold
    np.testing.assert_array_equal(np.argmax(np.asarray(s[0]), 0)[[0, 1, 3]], [0, 4, 6])
    s_log = enc.latency(x, 20, method="log", tau=5.0, threshold=0.2)
    first = np.argmax(np.asarray(s_log[0]), 0)
    want = np.round(5.0 * np.log(np.array([1.0, 0.5, 0.25]) / (np.array([1.0, 0.5, 0.25]) - 0.2)))
    np.testing.assert_array_equal(first[[0, 1, 3]], want)
    assert first[0] < first[1] < first[3]
    with pytest.raises(ValueError, match="method"):
        enc.latency(x, 5, method="exp")


def test_delta_send_on_change():
    sig = jnp.array([[0.0, 0.3, 0.6, 0.65, 0.2, 0.2, 1.0]])[..., None]
    s = enc.delta(sig, 0.25)
    assert s.shape == (1, 7, 2, 1)
    # reference walk: ref 0 -> 0.3 (up) -> 0.6 (up) -> 0.65 (no) -> 0.2 (down) -> 1.0 (up)
    np.testing.assert_array_equal(s[0, :, 0, 0], [0, 1, 1, 0, 0, 0, 1])
    np.testing.assert_array_equal(s[0, :, 1, 0], [0, 0, 0, 0, 1, 0, 0])


def test_direct_and_readouts():
    x = jnp.arange(6.0).reshape(2, 3)
    d = enc.direct(x, 4)
    assert d.shape == (2, 4, 3)
    np.testing.assert_array_equal(d[:, 2], x)
    v = jax.random.normal(jax.random.PRNGKey(2), (2, 5, 3))
    np.testing.assert_allclose(enc.readout(v, "mean_membrane"), np.mean(v, 1), rtol=1e-6)
    np.testing.assert_allclose(enc.readout(v, "max_membrane"), np.max(v, 1))
    np.testing.assert_allclose(enc.readout(v, "spike_count"), np.sum(v, 1), rtol=1e-6)
    np.testing.assert_allclose(enc.readout(v, "last_membrane"), v[:, -1])
    with pytest.raises(ValueError, match="method"):
        enc.readout(v, "median")


def test_metrics_counts_and_energy():
    s1 = jnp.zeros((2, 4, 10)).at[0, 0, :5].set(1.0).at[1, 3, 0].set(1.0)  # 6 spikes
    s2 = jnp.ones((2, 4, 3))  # 24 spikes
    m = sm.spiking_metrics(
        {"fc1": s1, "fc2": s2},
        {"fc1": sm.dense_fan_out(3), "fc2": sm.dense_fan_out(7)},
        macs=100.0,
        ann_macs=1000.0,
        costs=sm.EnergyCosts(accumulate_pj=1.0, mac_pj=5.0),
    )
    np.testing.assert_allclose(m["firing_rate/fc1"], 6 / 80)
    np.testing.assert_allclose(m["sparsity/fc1"], 1 - 6 / 80)
    np.testing.assert_allclose(m["sparsity/fc2"], 0.0)
    np.testing.assert_allclose(m["synops/fc1"], 6 * 3 / 2)
    np.testing.assert_allclose(m["synops/fc2"], 24 * 7 / 2)
    total = 9 + 84
    np.testing.assert_allclose(m["synops/total"], total)
    np.testing.assert_allclose(m["energy_pj/total"], total * 1.0 + 100 * 5.0)
    np.testing.assert_allclose(m["energy/ratio"], (total + 500.0) / 5000.0, rtol=1e-6)
    # default costs: 0.9 pJ per AC and 4.6 pJ per MAC
    np.testing.assert_allclose(sm.energy_pj(10.0, 2.0), 10 * 0.9 + 2 * 4.6, rtol=1e-6)
    assert sm.conv_fan_out(3, 8) == 24 and sm.conv_fan_out((3, 3), 8) == 72
    assert sm.conv_fan_out((3, 3), 8, 2) == 18  # stride 2 in both axes
    with pytest.raises(ValueError, match="fan_out"):
        sm.spiking_metrics({"a": s1}, {"b": 3})
