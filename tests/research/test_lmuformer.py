"""LMUFormer (Liu et al., 2024): streaming (one sample at a time) inference equals the parallel
form at every prefix; bad inputs raise; a permuted-digits smoke run."""

import jax
import numpy as np
import pytest

from research.lmuformer.configs import psdigits
from research.lmuformer.model import LMUFormer, Transformer, make_model, train_psdigits


def _seq(b=2, length=20, c=1, seed=0):
    return np.random.default_rng(seed).random((b, length, c)).astype(np.float32)


@pytest.mark.slow  # ~15 s CPU: the streaming loop is unrolled over 24 steps
def test_stream_equals_parallel_at_every_prefix():
    x = _seq(2, 24, 2)
    model = LMUFormer(dim=16, depth=2, order=8, theta=12.0, kernel=3)
    params = model.init(jax.random.key(0), x)
    par = np.asarray(jax.jit(lambda p, x: model.apply(p, x, method="prefix_logits"))(params, x))
    assert par.shape == (2, 24, 10) and np.isfinite(par).all() and np.abs(par).max() > 0.1
    np.testing.assert_allclose(jax.jit(model.apply)(params, x), par[:, -1], rtol=1e-5, atol=1e-5)
    stream = jax.jit(lambda p, x: model.apply(p, x, method="stream"))(params, x)
    np.testing.assert_allclose(stream, par, rtol=1e-4, atol=1e-4)
    # Causal: the prefix logits before time 10 do not depend on later samples.
    y = x.copy()
    y[:, 10:] += 1.0
    par_y = np.asarray(model.apply(params, y, method="prefix_logits"))
    np.testing.assert_allclose(par_y[:, :10], par[:, :10], rtol=1e-5, atol=1e-5)
    assert np.abs(par_y[:, 10:] - par[:, 10:]).max() > 1e-3


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


@pytest.mark.slow  # ~15 s CPU
def test_psdigits_smoke():
    r = train_psdigits(psdigits.get_config("smoke"))
    assert np.isfinite(r["train_loss"]) and 0.0 <= r["test_accuracy"] <= 1.0
    assert r["num_params"] > 0
