"""Self-normalizing networks (Klambauer et al. 2017): activation statistics, smoke run, claim."""

import jax
import numpy as np
import optax
import pytest

from lib.train.fit import make_fit, run_seeds, softmax_cross_entropy
from research.self_normalizing.data import load_arrays
from research.self_normalizing.model import DeepMLP, hidden_statistics


def _stats(activation, depth=32, width=128, batch=256, seed=0):
    x = jax.random.normal(jax.random.key(100 + seed), (batch, 64))
    model = DeepMLP(depth, width, 10, activation)
    v = model.init({"params": jax.random.key(seed)}, x)
    mu, var = hidden_statistics(model, v, x, batch_statistics=True)
    return np.asarray(mu), np.asarray(var)


def test_claim_selu_keeps_activations_normalized_over_32_layers():
    mu, var = _stats("selu")
    assert np.abs(mu).max() < 0.1, mu
    assert np.abs(var - 1).max() < 0.15, var


def test_relu_without_normalization_drifts():
    _, var = _stats("relu_lecun")
    assert var[-1] < 1e-3  # variance halves per layer: 0.5^32
    mu, var = _stats("relu")
    # He init keeps the scale roughly, but ReLU outputs are never zero-mean: for a Gaussian
    # pre-activation mean / std = 0.40 / 0.58 = 0.68 at every layer.
    assert np.all(mu / np.sqrt(var) > 0.4), mu / np.sqrt(var)


def test_batchnorm_batch_statistics_normalize_preactivations():
    mu, var = _stats("relu_bn", depth=4)
    # ReLU of a standard normal: mean 1/sqrt(2 pi), variance 1/2 - 1/(2 pi).
    np.testing.assert_allclose(mu, 1 / np.sqrt(2 * np.pi), atol=0.03)
    np.testing.assert_allclose(var, 0.5 - 1 / (2 * np.pi), atol=0.03)


def test_model_bad_activation_and_dropout_is_random_in_training():
    x = np.ones((2, 64), np.float32)
    with pytest.raises(ValueError, match="activation"):
        DeepMLP(2, 8, 3, "gelu").init(jax.random.key(0), x)
    m = DeepMLP(2, 8, 3, "selu", dropout_rate=0.5)
    v = m.init(jax.random.key(0), x)
    a = m.apply(v, x, train=True, rngs={"dropout": jax.random.key(1)})
    b = m.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(m.apply(v, x), m.apply(v, x))


def test_digits_split_is_standardized():
    x_tr, y_tr, x_te, y_te, k = load_arrays("digits")
    assert k == 10 and x_tr.shape[1] == 64 and len(x_tr) + len(x_te) == 1797
    np.testing.assert_allclose(x_tr.mean(0), 0, atol=1e-5)
    seq = load_arrays("digits", as_sequence=True)[0]
    assert seq.shape[1:] == (8, 8)
    with pytest.raises(ValueError, match="unknown data set"):
        load_arrays("cifar")


@pytest.mark.claim
def test_smoke_run_and_study(tmp_path):
    """One model through launch.train (the run outputs, and a second call resumes from the
    final checkpoint), and the study launcher through lib.train.fit (per-seed outputs and
    results.json)."""
    from launch.self_normalizing import run as run_study
    from launch.train import run
    from research.self_normalizing.configs.default import get_config

    c = get_config("smoke")
    r = run(c, str(tmp_path / "run"))
    for name in ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json"):
        assert (tmp_path / "run" / name).exists(), name
    assert r["step"] == 20 and 0.0 <= r["test_accuracy"] <= 1.0
    assert run(c, str(tmp_path / "run"))["step"] == 20  # resumed at the end: nothing retrained
    c.stats.run = False  # the statistics have their own tests above
    c.study.activations = ("selu",)
    res = run_study(c, str(tmp_path / "study"))
    assert np.isfinite(res["training"][0]["final_train_loss"])
    for name in ("metrics.jsonl", "curves.png", "final_metrics.json"):
        assert (tmp_path / "study" / "digits_d4_selu" / "seed0" / name).exists(), name
    assert (tmp_path / "study" / "results.json").exists()


@pytest.mark.claim
@pytest.mark.slow
def test_claim_deep_snn_trains_with_plain_sgd():
    """A 32-layer SNN trains with plain SGD from LeCun init; the same net with ReLU and the same
    init (nothing keeps it normalized) does not move off chance in the same budget."""
    data = load_arrays("digits")[:4]
    accs = {}
    for act in ("selu", "relu_lecun"):
        fit = make_fit(
            DeepMLP(32, 32, 10, act),
            optax.sgd(0.01),
            softmax_cross_entropy,
            steps=400,
            batch_size=64,
        )
        accs[act] = run_seeds(fit, [0], data)[0]["test_accuracy"]
    assert accs["selu"] > 0.8, accs
    assert accs["relu_lecun"] < 0.3, accs
