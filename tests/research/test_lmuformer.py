"""LMUFormer (Liu et al., 2024) and its spiking twin: streaming (one sample at a time)
inference equals the parallel form at every prefix; the twin fires binary spikes at a
measurable rate and trains through surrogate gradients; bad inputs raise; smoke runs."""

import jax
import numpy as np
import pytest

from launch.lmuformer import run
from research.lmuformer.configs import psdigits, sweep
from research.lmuformer.model import Fire, LMUFormer, Transformer, make_model, spike_rates


def _seq(b=2, length=20, c=1, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).random((b, length, c))).astype(np.float32)


@pytest.mark.parametrize("spiking", [False, True])
def test_stream_equals_parallel_at_every_prefix(spiking):
    length = 10
    x = _seq(2, length, 2, scale=3.0)
    model = LMUFormer(dim=8, depth=2, order=4, theta=8.0, kernel=3, spiking=spiking)
    params = model.init(jax.random.key(0), x)
    assert set(params) == {"params"}  # no spike statistics stored at init
    par = np.asarray(jax.jit(lambda p, x: model.apply(p, x, method="prefix_logits"))(params, x))
    assert par.shape == (2, length, 10) and np.isfinite(par).all() and np.abs(par).max() > 0.1
    np.testing.assert_allclose(jax.jit(model.apply)(params, x), par[:, -1], rtol=1e-5, atol=1e-5)
    stream = jax.jit(lambda p, x: model.apply(p, x, method="stream"))(params, x)
    np.testing.assert_allclose(stream, par, rtol=1e-4, atol=1e-4)
    # Causal: the prefix logits before time 6 do not depend on later samples.
    y = x.copy()
    y[:, 6:] += 1.0
    par_y = np.asarray(model.apply(params, y, method="prefix_logits"))
    np.testing.assert_allclose(par_y[:, :6], par[:, :6], rtol=1e-5, atol=1e-5)
    assert np.abs(par_y[:, 6:] - par[:, 6:]).max() > 1e-3


def test_spiking_twin_spikes_and_surrogate_gradients():
    x = _seq(2, 12, 1, scale=3.0)
    model = LMUFormer(dim=8, depth=1, order=4, theta=8.0, spiking=True)
    params = model.init(jax.random.key(1), x)
    # Every LIF layer's output is exactly binary; rates are fractions in (0, 1).
    rates = spike_rates(model, params, x)
    assert set(rates) == {"fire_embed", "blocks_0/fire_mix", "blocks_0/fire_mlp", "mean"}
    assert all(0.0 < r < 1.0 for r in rates.values())
    np.testing.assert_allclose(rates["mean"], np.mean([v for k, v in rates.items() if k != "mean"]))
    spikes = Fire().apply({}, 2.0 * _seq(2, 12, 8))
    assert set(np.unique(np.asarray(spikes))) == {0.0, 1.0}
    # The Heaviside has zero derivative; the surrogate gives the embedding a nonzero gradient.
    grads = jax.grad(lambda p: model.apply(p, x).sum())(params)
    assert np.abs(np.asarray(grads["params"]["embed"]["w"])).max() > 0
    with pytest.raises(ValueError, match="spiking"):
        spike_rates(LMUFormer(dim=8), params, x)


def test_transformer_baseline_and_bad_inputs():
    x = _seq()
    t = Transformer(dim=16, num_heads=2)
    assert t.apply(t.init(jax.random.key(0), x), x).shape == (2, 10)
    c = psdigits.get_config("smoke")
    c.model = "rnn"
    with pytest.raises(ValueError, match="unknown model"):
        make_model(c)
    with pytest.raises(ValueError, match="unknown config"):
        psdigits.get_config("huge")
    c.experiment = "nope"
    with pytest.raises(ValueError, match="unknown experiment"):
        run(c)


def test_launch_smoke_spiking():
    c = psdigits.get_config("smoke")
    c.models = ("spiking_lmuformer",)
    (row,) = run(c)["psdigits"]
    assert row["model"] == "spiking_lmuformer" and np.isfinite(row["train_loss"])
    assert row["num_params"] > 0 and 0.0 <= row["test_accuracy"] <= 1.0
    assert 0.0 < row["spike_rate"] < 1.0


def test_sweep_rows(monkeypatch):
    import research.lmuformer.model as lmu_model

    seen = []

    def fake_train(cfg):  # records the config it gets; no training
        seen.append((cfg.model, cfg.dim))
        return {"num_params": cfg.dim, "test_accuracy": 0.5, "seconds": 0.0}

    monkeypatch.setattr(lmu_model, "train_model", fake_train)
    c = sweep.get_config("smoke")
    rows = run(c)["psdigits_sweep"]
    want = [(m, d) for m in ("lmuformer", "transformer") for d in (8, 16)]
    assert seen == want and [(r["model"], r["dim"]) for r in rows] == want
    assert [r["num_params"] for r in rows] == [8, 16, 8, 16]
