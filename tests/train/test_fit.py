"""lib.train.fit: one jitted fit per seed, looped or vmapped over seeds, chunked, with outputs."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lib.train.fit import (
    Variant,
    fit_study,
    make_fit,
    mean_squared_error,
    run_seeds,
    softmax_cross_entropy,
)
from lib.train.metrics import read_metrics


class Linear(nn.Module):
    out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.out)(x)


class DropoutNet(nn.Module):
    """Dense -> BatchNorm -> dropout -> Dense: uses `train`, batch_stats and a dropout RNG."""

    @nn.compact
    def __call__(self, x, train: bool):
        h = nn.BatchNorm(use_running_average=not train)(nn.Dense(16)(x))
        h = nn.Dropout(0.2, deterministic=not train)(nn.relu(h))
        return nn.Dense(3)(h)


def _regression(n=256, d=4, f=2, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, f)).astype(np.float32)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x, x @ w, w


def test_regression_fit_reaches_the_least_squares_solution():
    # Noise-free linear targets: the test MSE of a trained linear model must fall far below
    # the MSE of predicting zero (the targets' mean square, ~d), towards the exact solution.
    x, y, _ = _regression()
    fit = make_fit(Linear(2), optax.adam(3e-2), mean_squared_error, steps=400, batch_size=32,
                   metrics=None, train_flag=False)  # fmt: skip
    (row,) = run_seeds(fit, [0], (x[:192], y[:192], x[192:], y[192:]))
    baseline = float(np.mean(y[192:] ** 2))
    assert row["test_loss"] < 1e-3 * baseline, (row, baseline)
    assert set(row) == {"seed", "test_loss", "final_loss"}


def test_vmapped_seeds_equal_looped_seeds():
    # The same keys give the same runs whether the seeds are looped or vmapped (batch order,
    # dropout masks, batch statistics and the evaluation all follow the key).
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    fit = make_fit(DropoutNet(), optax.sgd(0.1), softmax_cross_entropy, steps=30, batch_size=16)
    data = (x[:64], y[:64], x[64:], y[64:])
    looped = run_seeds(fit, [3, 4], data)
    vmapped = run_seeds(fit, [3, 4], data, vectorize=True, keep_variables=True)
    assert [r["seed"] for r in vmapped] == [3, 4]
    for a, b in zip(looped, vmapped):
        for k in ("test_loss", "final_loss", "train_accuracy", "test_accuracy"):
            np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=1e-6, err_msg=k)
    # Different seeds are different runs; batch statistics were updated in training.
    assert looped[0]["final_loss"] != looped[1]["final_loss"]
    stats = vmapped[0]["variables"]["batch_stats"]
    assert not np.allclose(jax.tree.leaves(stats)[0], 0.0)


def test_extra_loss_and_errors():
    x, y, _ = _regression(n=64)
    penalty = make_fit(Linear(2), optax.sgd(0.05), mean_squared_error, steps=200, batch_size=64,
                       metrics=None, train_flag=False,
                       extra_loss=lambda p, step: 10.0 * sum(jnp.sum(w**2) for w in jax.tree.leaves(p)))  # fmt: skip
    plain = make_fit(Linear(2), optax.sgd(0.05), mean_squared_error, steps=200, batch_size=64,
                     metrics=None, train_flag=False)  # fmt: skip
    key = jax.random.key(0)
    w_pen = penalty(key, x, y, x, y)["variables"]["params"]["Dense_0"]["kernel"]
    w_plain = plain(key, x, y, x, y)["variables"]["params"]["Dense_0"]["kernel"]
    # A strong weight penalty shrinks the solution.
    assert float(jnp.linalg.norm(w_pen)) < 0.5 * float(jnp.linalg.norm(w_plain))
    with pytest.raises(ValueError, match="steps"):
        make_fit(Linear(2), optax.sgd(0.1), mean_squared_error, steps=0, batch_size=4)
    with pytest.raises(ValueError, match="empty"):
        run_seeds(plain, [], (x, y, x, y))
    with pytest.raises(ValueError, match="differ"):
        mean_squared_error(jnp.zeros((2, 3)), jnp.zeros((2, 2)))


def _classes(n=96, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0).astype(np.int32)
    return x[:64], y[:64], x[64:], y[64:]


def test_chunked_scan_equals_one_scan():
    # 30 steps in chunks of 7 (the last chunk partial: its surplus steps must change nothing)
    # give the run that one 30-step scan gives: the same curve, evaluation and parameters.
    data = _classes()
    fit = make_fit(DropoutNet(), optax.sgd(0.1), softmax_cross_entropy, steps=30, batch_size=16)
    whole = fit(jax.random.key(5), *data)
    (chunked,) = run_seeds(fit, [5], data, log_every=7, keep_variables=True)
    np.testing.assert_allclose(chunked["test_loss"], whole["test_loss"], rtol=1e-5)
    np.testing.assert_allclose(chunked["final_loss"], np.mean(whole["loss"][-3:]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(chunked["variables"]), jax.tree.leaves(whole["variables"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_study_outputs_match_the_fit(tmp_path):
    """Vmapped seeds in chunks write, per seed, metrics.jsonl whose chunk losses are the means
    of the fit's own curve (the whole run called directly), TensorBoard events, curves.png and
    final_metrics.json; the study writes results.json with the mean/std over seeds."""
    data = _classes()
    fit = make_fit(DropoutNet(), optax.sgd(0.1), softmax_cross_entropy, steps=20, batch_size=16)
    rows = fit_study(str(tmp_path), [Variant("net", fit, data, fields={"width": 16})], [0, 1],
                     keys=("test_accuracy",), log_every=5)  # fmt: skip
    for row in rows:
        sub = tmp_path / "net" / f"seed{row['seed']}"
        for name in ("metrics.jsonl", "curves.png", "final_metrics.json", "tensorboard"):
            assert (sub / name).exists(), name
        curve = np.asarray(fit(jax.random.key(row["seed"]), *data)["loss"])
        train = read_metrics(str(sub), "train")
        assert [r["step"] for r in train] == [5, 10, 15, 20]
        np.testing.assert_allclose([r["loss"] for r in train], curve.reshape(4, 5).mean(1),
                                   rtol=1e-4)  # fmt: skip
        (test,) = read_metrics(str(sub), "test")
        assert test["loss"] == pytest.approx(row["test_loss"])
        assert row["width"] == 16 and row["variant"] == "net"
    results = json.loads((tmp_path / "results.json").read_text())
    (summary,) = results["summary"]
    accs = [r["test_accuracy"] for r in rows]
    assert summary["test_accuracy_mean"] == pytest.approx(np.mean(accs))
    assert summary["test_accuracy_std"] == pytest.approx(np.std(accs, ddof=1))


def test_hyperparameters_and_per_seed_data_share_one_compile():
    """A `tx` factory's hyper-parameters are traced: two learning rates run through the same
    compiled chunk; per-seed data sets (`batched_data`) vmapped equal them looped."""
    x, y, _ = _regression(n=64)
    fit = make_fit(Linear(2), lambda h: optax.sgd(h["lr"]), mean_squared_error, steps=12,
                   batch_size=8, metrics=None, train_flag=False)  # fmt: skip
    slow, fast = (run_seeds(fit, [0, 1], (x, y, x, y), vectorize=True, log_every=4,
                            hparams={"lr": jnp.float32(lr)}) for lr in (1e-3, 1e-1))  # fmt: skip
    assert fast[0]["test_loss"] < slow[0]["test_loss"]
    _, chunk, _ = fit.jitted(True, 4, False)
    assert chunk._cache_size() == 1
    stacked = tuple(np.stack([a, a[::-1]]) for a in (x, y, x, y))
    looped = run_seeds(fit, [0, 1], stacked, batched_data=True, hparams={"lr": 0.1})
    vmapped = run_seeds(fit, [0, 1], stacked, batched_data=True, vectorize=True,
                        hparams={"lr": 0.1})  # fmt: skip
    for a, b in zip(looped, vmapped):
        np.testing.assert_allclose(a["test_loss"], b["test_loss"], rtol=1e-5)
