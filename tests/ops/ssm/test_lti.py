"""Tests for lib.ops.ssm.lti: S4D, S5, LRU, RG-LRU against NumPy loops; forms, steps, inits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.ssm import lti as L

KEY = jax.random.PRNGKey
_static = ("discretization", "return_final_state", "method", "c")
s4d = jax.jit(L.ssm_s4d, static_argnames=_static[:3])
s5 = jax.jit(L.ssm_s5, static_argnames=_static[:3])
lru = jax.jit(L.ssm_lru, static_argnames=_static[1:3])
rglru = jax.jit(L.ssm_rglru, static_argnames=_static[1:])


def _rel(x, y):
    x, y = np.asarray(x, np.complex128), np.asarray(y, np.complex128)
    return np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12)


def _cplx(key, shape, scale=1.0):
    k1, k2 = jax.random.split(key)
    return (scale * (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape))).astype(
        jnp.complex64
    )


def _loop(lam_bar, bu, h0):
    """NumPy float64/complex128 x_t = lam_bar x_{t-1} + bu_t over axis 1."""
    lam_bar, bu = np.asarray(lam_bar, np.complex128), np.asarray(bu, np.complex128)
    h, out = np.asarray(h0, np.complex128), np.zeros(bu.shape, np.complex128)
    for t in range(bu.shape[1]):
        h = lam_bar * h + bu[:, t]
        out[:, t] = h
    return out, h


# ---------------------------------------------------------------- initialisers and discretisation


def test_hippo_legs_and_normal_part():
    s3, s5, s15 = np.sqrt(3), np.sqrt(5), np.sqrt(15)
    want = -np.array([[1, 0, 0], [s3, 2, 0], [s5, s15, 3]])
    np.testing.assert_allclose(L.hippo_legs(3), want, rtol=1e-12)
    n = 8
    lam, v = L.hippo_legs_normal_eig(n)
    p = np.sqrt(np.arange(n) + 0.5)
    normal = L.hippo_legs(n) + np.outer(p, p)
    recon = np.asarray(v) @ np.diag(np.asarray(lam)) @ np.asarray(v).conj().T
    np.testing.assert_allclose(recon, normal, atol=1e-4)
    np.testing.assert_allclose(np.real(lam), -0.5, atol=1e-5)
    np.testing.assert_allclose(np.imag(L.s4d_lin_init(4)), np.pi * np.arange(4), rtol=1e-6)
    assert np.all(np.real(L.s4d_inv_init(4)) == -0.5)


def test_discretize_zoh_exact_and_bilinear_close():
    lam = jnp.array([-0.5 + 2j, -1.0 + 0j], jnp.complex64)
    B = jnp.array([1.0 + 0j, 2.0 + 1j], jnp.complex64)
    dt = 0.01
    lb, bb = L.discretize(lam, B, dt, "zoh")
    np.testing.assert_allclose(lb, np.exp(dt * np.asarray(lam)), rtol=1e-6)
    # ZOH integrates exactly: B_bar = int_0^dt exp(lam s) ds B.
    np.testing.assert_allclose(
        bb, (np.exp(dt * np.asarray(lam)) - 1) / np.asarray(lam) * B, rtol=1e-5
    )
    lb2, bb2 = L.discretize(lam, B, dt, "bilinear")
    np.testing.assert_allclose(lb2, lb, rtol=1e-6)
    np.testing.assert_allclose(bb2, bb, rtol=1e-3)
    with pytest.raises(ValueError, match="discretization"):
        L.discretize(lam, B, dt, "euler")


def test_lru_ring_init():
    nu, theta, gamma = L.lru_ring_init(KEY(0), 256, r_min=0.4, r_max=0.9, max_phase=np.pi)
    lam = L.lru_lambda(nu, theta)
    assert np.all((np.abs(lam) >= 0.4 - 1e-5) & (np.abs(lam) <= 0.9 + 1e-5))
    assert np.all((np.angle(lam) >= 0) & (np.angle(lam) <= np.pi + 1e-5))
    np.testing.assert_allclose(np.exp(gamma), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-4)


# ---------------------------------------------------------------- S4D


def _s4d_params(d=3, n=4, seed=0):
    ks = jax.random.split(KEY(seed), 5)
    lam = L.s4d_lin_init(n)[None].repeat(d, 0) - jnp.abs(jax.random.normal(ks[0], (d, n)))
    return dict(Lambda=lam, B=_cplx(ks[1], (d, n)), C=_cplx(ks[2], (d, n)),
                log_dt=jnp.log(jnp.linspace(0.01, 0.1, d)), D=jax.random.normal(ks[3], (d,)))  # fmt: skip


@pytest.mark.parametrize(
    "disc, methods", [("zoh", ("associative", "chunked", "fft")), ("bilinear", ("fft",))]
)
def test_s4d_forms_match_numpy_values_and_grads(disc, methods):
    prm = _s4d_params()
    u = jax.random.normal(KEY(1), (2, 37, 3))
    h0 = _cplx(KEY(2), (2, 3, 4))
    lb, bb = L.discretize(prm["Lambda"], prm["B"], jnp.exp(prm["log_dt"])[:, None], disc)
    x, h_np = _loop(lb, np.asarray(u)[..., None] * np.asarray(bb), h0)
    y_np = np.real(np.einsum("bldn,dn->bld", x, prm["C"])) + np.asarray(prm["D"]) * u

    def run(prm, u, method):
        return s4d(u, **prm, discretization=disc, initial_state=h0, method=method,
                         return_final_state=True)  # fmt: skip

    loss = lambda prm, u, m: (
        jnp.sum(jnp.sin(run(prm, u, m)[0])) + jnp.sum(jnp.abs(run(prm, u, m)[1]))
    )
    grad = jax.jit(jax.grad(loss, (0, 1)), static_argnums=2)
    ref_g = grad(prm, u, "scan")
    for method in ("scan",) + methods:
        y, h = run(prm, u, method)
        assert _rel(y, y_np) < 1e-4 and _rel(h, h_np) < 1e-4, method
        for a, b in zip(jax.tree.leaves(grad(prm, u, method)), jax.tree.leaves(ref_g)):
            assert _rel(a, b) < 1e-4, method


def test_s4d_long_sequence_and_step():
    prm = _s4d_params(d=2, n=2, seed=3)
    u = jax.random.normal(KEY(4), (1, 4096, 2))
    y_ref = jax.jit(lambda u: s4d(u, **prm, method="scan"))(u)
    for method in ("chunked", "fft"):
        y = jax.jit(lambda u, m=method: s4d(u, **prm, method=m))(u)
        assert np.all(np.isfinite(y)) and _rel(y, y_ref) < 1e-4, method
    u = u[:, :6]
    full, last = s4d(u, **prm, return_final_state=True)
    state = L.DiagState(jnp.zeros((1, 2, 2), jnp.complex64))
    ys = []
    for t in range(6):
        state, y_t = L.ssm_s4d_step(state, u[:, t], **prm)
        ys.append(y_t)
    assert _rel(jnp.stack(ys, 1), full) < 1e-5 and _rel(state.h, last) < 1e-5


# ---------------------------------------------------------------- S5 and LRU


def _mimo_params(h=3, p=4, seed=0):
    ks = jax.random.split(KEY(seed), 5)
    lam, _ = L.hippo_legs_normal_eig(p)
    return dict(Lambda=lam, B=_cplx(ks[0], (p, h), 0.5), C=_cplx(ks[1], (h, p), 0.5),
                log_dt=jnp.log(jnp.linspace(0.01, 0.1, p)), D=jax.random.normal(ks[2], (h,)))  # fmt: skip


@pytest.mark.parametrize(
    "length, methods", [(1, ("scan",)), (37, ("scan", "associative", "chunked"))]
)
def test_s5_matches_numpy_all_forms_and_bf16(length, methods):
    prm = _mimo_params()
    u = jax.random.normal(KEY(5), (2, length, 3))
    h0 = _cplx(KEY(6), (2, 4))
    lb, bb = L.discretize(prm["Lambda"], prm["B"], jnp.exp(prm["log_dt"]), "zoh")
    x, h_np = _loop(lb, np.einsum("blh,ph->blp", u, bb), h0)
    y_np = np.real(np.einsum("blp,hp->blh", x, prm["C"])) + np.asarray(prm["D"]) * u
    for method in methods:
        y, h = s5(u, **prm, initial_state=h0, return_final_state=True, method=method)
        assert _rel(y, y_np) < 1e-4 and _rel(h, h_np) < 1e-4, method
    y16 = s5(u.astype(jnp.bfloat16), **prm, initial_state=h0)
    assert y16.dtype == jnp.bfloat16 and _rel(y16.astype(jnp.float32), y_np) < 3e-2


def test_lru_matches_numpy_grads_and_step():
    p, h = 4, 3
    nu, theta, gamma = L.lru_ring_init(KEY(7), p, 0.5, 0.95)
    prm = dict(nu_log=nu, theta_log=theta, B=_cplx(KEY(8), (p, h)), C=_cplx(KEY(9), (h, p)),
               D=jnp.ones((h,)), gamma_log=gamma)  # fmt: skip
    u = jax.random.normal(KEY(10), (2, 37, h))
    lam = L.lru_lambda(nu, theta)
    bb = np.exp(np.asarray(gamma))[:, None] * np.asarray(prm["B"])
    x, _ = _loop(lam, np.einsum("blh,ph->blp", u, bb), np.zeros((2, p)))
    y_np = np.real(np.einsum("blp,hp->blh", x, prm["C"])) + u
    assert _rel(lru(u, **prm, method="scan"), y_np) < 1e-4
    loss = lambda prm, m: jnp.sum(jnp.sin(lru(u, **prm, method=m)))
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    for a, b in zip(jax.tree.leaves(grad(prm, "associative")), jax.tree.leaves(grad(prm, "scan"))):
        assert _rel(a, b) < 1e-4
    full = lru(u[:, :5], **prm)
    state, ys = L.DiagState(jnp.zeros((2, p), jnp.complex64)), []
    for t in range(5):
        state, y_t = L.mimo_step(
            state, u[:, t], lam, jnp.asarray(bb, jnp.complex64), prm["C"], prm["D"]
        )
        ys.append(y_t)
    assert _rel(jnp.stack(ys, 1), full) < 1e-5


# ---------------------------------------------------------------- RG-LRU


def _rglru_inputs(length, b=2, d=3, seed=0):
    ks = jax.random.split(KEY(seed), 4)
    x, ga, gx = (jax.random.normal(k, (b, length, d)) for k in ks[:3])
    a_param = jax.random.uniform(ks[3], (d,), minval=2.0, maxval=6.0)
    return x, ga, gx, a_param


def _rglru_numpy(x, ga, gx, a_param, c=8.0, h0=None):
    x, ga, gx, a_param = (np.asarray(v, np.float64) for v in (x, ga, gx, a_param))
    sig = lambda v: 1 / (1 + np.exp(-v))
    a = sig(a_param) ** (c * sig(ga))
    h = np.zeros_like(x[:, 0]) if h0 is None else np.asarray(h0, np.float64)
    out = np.zeros_like(x)
    for t in range(x.shape[1]):
        h = a[:, t] * h + np.sqrt(1 - a[:, t] ** 2) * sig(gx[:, t]) * x[:, t]
        out[:, t] = h
    return out, h


def test_rglru_matches_numpy_forms_grads_step():
    x, ga, gx, ap = _rglru_inputs(37)
    h0 = jax.random.normal(KEY(11), (2, 3))
    h_np, last_np = _rglru_numpy(x, ga, gx, ap, h0=h0)
    run = lambda args, m: rglru(*args, initial_state=h0, method=m, return_final_state=True)
    for method in ("scan", "associative", "chunked"):
        h, last = run((x, ga, gx, ap), method)
        assert _rel(h, h_np) < 1e-5 and _rel(last, last_np) < 1e-5, method
    loss = lambda args, m: jnp.sum(jnp.sin(run(args, m)[0]))
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    for a, b in zip(grad((x, ga, gx, ap), "chunked"), grad((x, ga, gx, ap), "scan")):
        assert _rel(a, b) < 1e-4
    state, hs = L.DiagState(h0), []
    for t in range(37):
        state, h_t = L.ssm_rglru_step(state, x[:, t], ga[:, t], gx[:, t], ap)
        hs.append(h_t)
    assert _rel(jnp.stack(hs, 1), h_np) < 1e-5


def test_rglru_long_bf16_segments_and_finite_grads():
    x, ga, gx, ap = _rglru_inputs(4096, b=1, d=2, seed=12)
    h_np, _ = _rglru_numpy(x, ga, gx, ap)
    h = jax.jit(lambda *a: rglru(*a, method="chunked"))(x, ga, gx, ap)
    assert _rel(h, h_np) < 1e-4
    h16 = rglru(*(v.astype(jnp.bfloat16) for v in (x[:, :37], ga[:, :37], gx[:, :37])), ap)
    assert h16.dtype == jnp.bfloat16 and _rel(h16.astype(jnp.float32), h_np[:, :37]) < 5e-2
    # r_t -> 0 makes a_t -> 1, where sqrt(1 - a^2) has an infinite slope: gradients stay finite.
    g = jax.grad(lambda ga: jnp.sum(rglru(x[:, :8], ga, gx[:, :8], ap)))(-30 + ga[:, :8])
    assert np.all(np.isfinite(g))
    seg = jnp.array([[0] * 3 + [1] * 5])
    hs = rglru(x[:, :8], ga[:, :8], gx[:, :8], ap, segment_ids=seg)
    # A new segment starts from zero with an unnormalised input, as Griffin does.
    sig = jax.nn.sigmoid
    np.testing.assert_allclose(hs[:, 3], sig(gx[:, 3]) * x[:, 3], rtol=1e-5)
    for lo, hi in [(0, 3), (3, 8)]:
        alone = rglru(x[:, lo:hi], ga[:, lo:hi], gx[:, lo:hi], ap,
                            segment_ids=jnp.zeros((1, hi - lo), int))  # fmt: skip
        np.testing.assert_allclose(hs[:, lo:hi], alone, rtol=1e-5, atol=1e-6)


def test_causality_and_bad_inputs():
    prm = _mimo_params()
    u = jax.random.normal(KEY(13), (1, 12, 3))
    g = jax.grad(lambda u: jnp.sum(s5(u, **prm, method="associative")[:, 5]))(u)
    assert np.all(np.asarray(g[:, 6:]) == 0) and np.any(np.asarray(g[:, :6]) != 0)
    s4 = _s4d_params()
    g = jax.grad(lambda u: jnp.sum(s4d(u, **s4, method="fft")[:, 5]))(u)
    assert np.all(np.abs(np.asarray(g[:, 6:])) < 1e-6) and np.any(np.asarray(g[:, :6]) != 0)
    with pytest.raises(ValueError, match="`u`"):
        s5(u[0], **prm)
    with pytest.raises(ValueError, match="`B`"):
        s5(u, **{**prm, "B": prm["B"][:, :2]})
    with pytest.raises(ValueError, match="`log_dt`"):
        s4d(u, **{**s4, "log_dt": s4["log_dt"][:2]})
    with pytest.raises(ValueError, match="method"):
        s5(u, **prm, method="fft")
    with pytest.raises(ValueError, match="segment_ids"):
        s4d(u, **s4, method="fft", segment_ids=jnp.zeros((1, 12), int))
    with pytest.raises(ValueError, match="`a_param`"):
        rglru(u, u, u, jnp.zeros(2))
