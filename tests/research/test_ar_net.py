"""AR-Net (Triebe et al. 2019): data generator, metric, regulariser, smoke run, and the claims."""

import numpy as np
import pytest

from research.ar_net import data as D
from research.ar_net.configs.default import get_config
from research.ar_net.model import ARNet, fit_ar_net, sparsity_penalty


def test_generated_process_follows_its_recursion():
    w = np.array([0.5, -0.3, 0.1])
    y = D.generate_ar_process(w, 4000, noise_std=0.7, seed=3)
    X, t = D.lagged_windows(y, 3)
    resid = t - X @ w
    # Residuals are the innovations: the right scale and white (no lag-1 correlation).
    np.testing.assert_allclose(resid.std(), 0.7, rtol=0.05)
    assert abs(np.corrcoef(resid[1:], resid[:-1])[0, 1]) < 0.05
    np.testing.assert_array_equal(X[5], y[7:4:-1])  # newest lag first
    assert t[5] == y[8]


@pytest.mark.parametrize("kind", ["l1", "roots"])
def test_sampled_coefficients_are_stationary(kind):
    for seed in range(5):
        w = D.random_stable_coeffs(6, seed, kind=kind)
        # Companion-matrix eigenvalues inside the unit circle <=> stationary.
        comp = np.eye(6, k=-1)
        comp[0] = w
        assert np.abs(np.linalg.eigvals(comp)).max() < 1
    w = D.random_stable_coeffs(3, 0, min_abs=0.1)
    assert np.abs(w).min() >= 0.1


def test_metrics_and_bad_input():
    w = np.array([0.5, -0.2])
    assert D.stpe(w, w) == 0.0
    assert D.stpe(np.array([0.0, 0.0, 0.4]), w) == pytest.approx(100.0)
    assert D.stpe(np.array([0.5, -0.2, 0.0]), w) == 0.0  # zero padding
    assert D.estimated_order(np.array([0.3, 0.0, 0.06, 0.01]), tol=0.05) == 3
    with pytest.raises(ValueError, match="longer than p"):
        D.lagged_windows(np.ones(3), 5)
    with pytest.raises(ValueError, match="kind"):
        D.random_stable_coeffs(3, 0, kind="bogus")


def test_sparsity_penalty_values():
    # R(w) = mean(2 / (1 + exp(-3 |w|^(1/3))) - 1); at |w| = 1 that is tanh(1.5).
    np.testing.assert_allclose(sparsity_penalty(np.zeros(4)), 0.0, atol=1e-3)
    np.testing.assert_allclose(sparsity_penalty(np.array([1.0, -1.0])), np.tanh(1.5), rtol=1e-5)
    np.testing.assert_allclose(sparsity_penalty(np.array([1.0, 0.0])), np.tanh(1.5) / 2, rtol=1e-3)


def test_linear_arnet_is_a_dot_product():
    import jax

    lags = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    model = ARNet()
    params = model.init(jax.random.key(0), lags)
    w = np.arange(5, dtype=np.float32)
    params = {"params": {"out": {"kernel": w[:, None]}}}
    np.testing.assert_allclose(model.apply(params, lags), lags @ w, rtol=1e-5)


@pytest.mark.claim
def test_smoke_launch(tmp_path):
    """The studies through lib.train.fit (per-process outputs, results.json with every table)."""
    from launch.ar_net import run

    results = run(get_config("smoke"), str(tmp_path))
    assert {"recovery", "recovery_near_unit_root", "order_selection", "fit_time"} <= set(results)
    assert all(np.isfinite(r["ar_net_stpe"]) for r in results["recovery"])
    for name in ("metrics.jsonl", "curves.png", "final_metrics.json"):
        assert (tmp_path / "order_lambda0.3" / "seed0" / name).exists(), name
    assert (tmp_path / "results.json").exists()


@pytest.mark.claim
def test_smoke_run_with_sparsity_resumes(tmp_path):
    """One AR-Net with p overestimated and the ramped regulariser as a run through
    launch.train (the penalty's step comes with the batch): the run's outputs, the fitted
    coefficients' sTPE, and a second call resumes at the end."""
    from launch.train import run

    c = get_config("smoke")
    c.model.update(p=6, sparsity=0.3)
    r = run(c, str(tmp_path))
    for name in ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json"):
        assert (tmp_path / name).exists(), name
    assert r["step"] == 100 and 0.0 <= r["test_stpe"] <= 100.0 and "train_extra_loss" in r
    assert run(c, str(tmp_path))["step"] == 100


@pytest.mark.claim
@pytest.mark.slow
def test_claim_recovery_and_order_selection():
    """The paper's claims at small scale: at the true order AR-Net's coefficient error is close
    to least squares'; with p overestimated 3 -> 20 and the sparsity regulariser it finds the
    true order and has a lower error than least squares of order 20."""
    w = D.random_stable_coeffs(3, 7, min_abs=0.1)
    y = D.generate_ar_process(w, 5000, seed=17)
    c = get_config()
    err_net = D.stpe(fit_ar_net(y, c)["coeffs"], w)
    err_ols = D.stpe(D.fit_least_squares(y, 3), w)
    assert err_net < err_ols + 1.5 and err_net < 5.0, (err_net, err_ols)

    c.model.update(p=20, sparsity=0.3)
    sparse = fit_ar_net(y, c)["coeffs"]
    ols20 = D.fit_least_squares(y, 20)
    assert D.estimated_order(sparse, tol=0.05) == 3
    assert D.stpe(sparse, w) < D.stpe(ols20, w), (D.stpe(sparse, w), D.stpe(ols20, w))
