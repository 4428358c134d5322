"""Tests of the dynamical-systems data: solvers checked against exact solutions, convergence
orders and finer integrations; AR coefficients recovered by least squares."""

import numpy as np
import pytest

import lib.data as data
from lib.data import dynamics as dyn

SMALL = dict(num_train=6, num_validation=2, num_test=2)


def test_ar_coefficients_recovered_by_least_squares(build):
    meta, splits = build(
        "ar_process", order=3, num_steps=400, num_train=40, num_validation=2, num_test=2
    )
    a = np.asarray(meta["coefficients"])
    roots = np.roots(np.concatenate([[1.0], -a]))
    assert len(a) == 3 and np.all(np.abs(roots) < 1)
    rows, ys = [], []
    for ex in splits["train"]:
        x = ex["series"][:, 0].astype(float)
        rows.append(np.stack([x[2:-1], x[1:-2], x[:-3]], axis=1))
        ys.append(x[3:])
    fit, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(ys), rcond=None)
    np.testing.assert_allclose(fit, a, atol=0.04)
    residual = np.concatenate(ys) - np.concatenate(rows) @ a
    assert abs(residual.std() - 1.0) < 0.05  # noise_std


def test_ar_given_coefficients(build):
    meta, splits = build("ar_process", order=2, coefficients=[0.5, -0.3], num_steps=50, **SMALL)
    assert meta["coefficients"] == [0.5, -0.3]
    ex = splits["train"][0]["series"]
    assert ex.shape == (51, 1) and ex.dtype == np.float32


def test_lorenz96_matches_finer_integration(build):
    meta, splits = build(
        "lorenz96", dim=10, num_steps=20, burn_in=60, num_train=4, num_validation=1, num_test=1
    )
    series = splits["train"][0]["series"].astype(float)
    assert series.shape == (21, 10)
    # Ten times finer RK4 from the stored state at t lands on the stored state at t + 1.
    x = series[5]
    for _ in range(50):
        x = dyn.rk4_step(lambda s: dyn.lorenz96_rhs(s, 8.0), x, 0.001)
    np.testing.assert_allclose(x, series[6], atol=2e-4)
    allx = np.concatenate([ex["series"] for ex in splits["train"]])
    assert 1.0 < allx.mean() < 3.5 and 2.5 < allx.std() < 4.5  # F=8 climate: ~2.3, ~3.6


def test_etdrk4_exact_for_linear_and_converges():
    n, length = 64, 2 * np.pi
    x = np.arange(n) * length / n
    u0 = np.sin(x) + 0.3 * np.cos(3 * x)
    k = dyn.wavenumbers(n, length)
    lin = -0.1 * k**2
    u = dyn.etdrk4(u0, lin, lambda v: 0 * v, 0.1, 10)
    exact = dyn.heat(u0, length, 0.1, [1.0])[0]
    np.testing.assert_allclose(u[-1], exact, atol=1e-12)
    # Kuramoto-Sivashinsky: halving dt divides the error by 6-8 here (Cox-Matthews ETDRK4 shows
    # some stiff order reduction below its nominal 4; Hochbruck & Ostermann 2005), and the
    # error at the data's dt = 0.25 is ~1e-4 of an O(1) field.
    u0 = np.cos(2 * np.pi * np.arange(n) / n) * (1 + np.sin(2 * np.pi * np.arange(n) / n))
    ref = dyn.kuramoto_sivashinsky(u0, 22.0, 0.0125, 160)[-1]
    errors = [
        np.abs(dyn.kuramoto_sivashinsky(u0, 22.0, dt, int(round(2.0 / dt)))[-1] - ref).max()
        for dt in (0.2, 0.1)
    ]
    assert 5 < errors[0] / errors[1] < 24 and errors[0] < 2e-4, errors


def test_kuramoto_sivashinsky_data(build):
    meta, splits = build("kuramoto_sivashinsky", grid=32, num_steps=30, burn_in=40, **SMALL)
    s = splits["train"][0]["series"]
    assert s.shape == (31, 32) and np.all(np.isfinite(s))
    means = s.mean(axis=1)
    np.testing.assert_allclose(means, means[0], atol=1e-5)  # the mean of u is conserved


def test_burgers_matches_cole_hopf():
    n, nu, t = 256, 0.05, 0.2
    x = np.arange(n) / n
    k = dyn.wavenumbers(n, 1.0)
    phi0 = 2 + np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x)

    def u_of(phi):
        phi_x = np.fft.irfft(1j * k * np.fft.rfft(phi), n)
        return -2 * nu * phi_x / phi

    exact = u_of(dyn.heat(phi0, 1.0, nu, [t])[0])
    numeric = dyn.burgers(u_of(phi0), 1.0, nu, 1e-3, 200)[-1]
    np.testing.assert_allclose(numeric, exact, atol=1e-6)


def test_heat_data_mode_decay(build):
    meta, splits = build("heat", grid=64, num_steps=20, dt=0.05, diffusivity=0.02, **SMALL)
    s = splits["train"][0]["series"].astype(float)
    v0, v1 = np.fft.rfft(s[0]), np.fft.rfft(s[20])
    for m in (1, 2, 3):
        if abs(v0[m]) > 1e-3:
            expected = np.exp(-0.02 * (2 * np.pi * m) ** 2 * 1.0)
            assert abs(abs(v1[m]) / abs(v0[m]) - expected) < 1e-4


@pytest.mark.parametrize(
    "name,opts,shape",
    [
        ("burgers", dict(grid=32, num_steps=8, save_every=5), (9, 32)),
        ("heat", dict(grid=16, num_steps=8), (9, 16)),
        ("lorenz96", dict(dim=8, num_steps=8, burn_in=10), (9, 8)),
    ],
)
def test_loaded_pairs_and_seed(tmp_path, name, opts, shape):
    data.prepare(name, tmp_path / "a", **opts, **SMALL)
    data.prepare(name, tmp_path / "b", **opts, **SMALL)
    data.prepare(name, tmp_path / "c", seed=5, **opts, **SMALL)
    a, b, c = (
        next(data.load(name, "train", batch_size=3, shuffle=False, data_dir=tmp_path / d))
        for d in "abc"
    )
    assert a["inputs"].shape == a["targets"].shape == (3, shape[0] - 1, shape[1])
    np.testing.assert_array_equal(a["inputs"][:, 1:], a["targets"][:, :-1])
    np.testing.assert_array_equal(a["inputs"], b["inputs"])
    assert not np.allclose(a["inputs"], c["inputs"])
