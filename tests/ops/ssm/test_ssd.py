"""Tests for lib.ops.ssm.ssd (Mamba-2 SSD): chunked form vs the recurrence, step, resets, stability."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.ssm import ssd as ssd_ops

NAMES = ("x", "dt", "A", "B", "C", "D", "dt_bias", "h0")


def _inputs(length, b=2, h=4, p=3, g=2, n=5, seed=0, dtype=jnp.float32, decay_scale=1.0):
    ks = jax.random.split(jax.random.PRNGKey(seed), 8)
    return dict(
        x=jax.random.normal(ks[0], (b, length, h, p)).astype(dtype),
        dt=(jax.random.normal(ks[1], (b, length, h)) - 1.0).astype(dtype),
        A=-decay_scale * jnp.exp(jax.random.normal(ks[2], (h,))),
        B=jax.random.normal(ks[3], (b, length, g, n)).astype(dtype),
        C=jax.random.normal(ks[4], (b, length, g, n)).astype(dtype),
        D=jax.random.normal(ks[5], (h,)),
        dt_bias=0.1 * jax.random.normal(ks[6], (h,)),
        h0=jax.random.normal(ks[7], (b, h, p, n)),
    )


_ssd = jax.jit(
    ssd_ops.ssd, static_argnames=("dt_softplus", "return_final_state", "method", "chunk_size")
)


def _call(p, method, with_h0=True, chunk_size=8, **kw):
    return _ssd(
        p["x"], p["dt"], p["A"], p["B"], p["C"], p["D"], dt_bias=p["dt_bias"], dt_softplus=True,
        initial_state=p["h0"] if with_h0 else None, return_final_state=True, method=method,
        chunk_size=chunk_size, **kw,
    )  # fmt: skip


def _naive(p):
    x, dt, A, B, C, D, bias, h0 = (np.asarray(p[k], np.float64) for k in NAMES)
    dt = np.log1p(np.exp(dt + bias))
    rep = x.shape[2] // B.shape[2]
    B, C = np.repeat(B, rep, 2), np.repeat(C, rep, 2)
    h, y = h0.copy(), np.zeros_like(x)
    for t in range(x.shape[1]):
        h = np.exp(dt[:, t] * A)[..., None, None] * h + np.einsum(
            "bhp,bhn->bhpn", x[:, t] * dt[:, t, :, None], B[:, t]
        )
        y[:, t] = np.einsum("bhpn,bhn->bhp", h, C[:, t]) + D[:, None] * x[:, t]
    return y, h


def _rel(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12)


@pytest.mark.parametrize("length", [1, 37])
def test_both_forms_match_numpy(length):
    p = _inputs(length)
    y_np, h_np = _naive(p)
    for method in ("scan", "chunked"):
        y, h = _call(p, method)
        assert _rel(y, y_np) < 1e-5 and _rel(h, h_np) < 1e-5, method


@pytest.mark.parametrize("length, with_h0", [(1, False), (37, True)])
def test_chunked_grads_match_reference(length, with_h0):
    p = _inputs(length, seed=1)

    def loss(args, method):
        y, h = _call(dict(zip(NAMES, args)), method, with_h0=with_h0)
        return jnp.sum(y * jnp.cos(jnp.arange(y.size).reshape(y.shape))) + jnp.sum(h**2)

    args = tuple(p[k] for k in NAMES)
    grad = jax.jit(jax.value_and_grad(loss), static_argnums=1)
    (rv, rg), (v, g) = grad(args, "scan"), grad(args, "chunked")
    assert _rel(v, rv) < 1e-5
    for name, gi, ri in zip(NAMES, g, rg):
        if name == "h0" and not with_h0:
            continue
        assert _rel(gi, ri) < 1e-4, name


def test_long_sequence_strong_decay_finite():
    """4096 steps with decays down to exp(-50) per step: finite values and gradients."""
    p = _inputs(4096, b=1, h=2, p=2, g=1, n=2, seed=2, decay_scale=20.0)
    fn = jax.jit(lambda p: _call(p, "chunked", chunk_size=64))
    y, h = fn(p)
    y_ref, _ = jax.jit(lambda p: _call(p, "scan"))(p)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(h))
    assert _rel(y, y_ref) < 1e-4
    g = jax.jit(jax.grad(lambda p: jnp.sum(_call(p, "chunked", chunk_size=64)[0])))(p)
    assert all(np.all(np.isfinite(v)) for v in jax.tree.leaves(g))


def test_bfloat16():
    y32, _ = _call(_inputs(37, seed=3), "scan")
    y16, _ = _call(_inputs(37, seed=3, dtype=jnp.bfloat16), "chunked")
    assert y16.dtype == jnp.bfloat16
    assert _rel(y16.astype(jnp.float32), y32) < 5e-2


def test_chunk_size_invariance():
    p = _inputs(37, seed=4)
    y_ref, h_ref = _call(p, "scan")
    for chunk in (1, 6, 64):
        y, h = _call(p, "chunked", chunk_size=chunk)
        assert _rel(y, y_ref) < 1e-5 and _rel(h, h_ref) < 1e-5, chunk


def test_step_equals_full():
    p = _inputs(7, seed=5)
    full, last = _call(p, "chunked", chunk_size=4)
    state = ssd_ops.SSDState(h=p["h0"])
    outs = []
    step = jax.jit(ssd_ops.ssd_step, static_argnames="dt_softplus")
    for t in range(7):
        state, y_t = step(
            state, p["x"][:, t], p["dt"][:, t], p["A"], p["B"][:, t], p["C"][:, t], p["D"],
            dt_bias=p["dt_bias"], dt_softplus=True,
        )  # fmt: skip
        outs.append(y_t)
    assert _rel(jnp.stack(outs, 1), full) < 1e-5 and _rel(state.h, last) < 1e-5
    assert ssd_ops.ssd_init_state(2, 4, 3, 5).h.shape == (2, 4, 3, 5)


@pytest.mark.parametrize("method", ["scan", "chunked"])
def test_segment_ids_equal_separate_sequences(method):
    p = _inputs(13, b=1, seed=6)
    seg = jnp.array([[0] * 5 + [1] * 8])
    y, _ = _call(p, method, with_h0=False, chunk_size=4, segment_ids=seg)
    per_step = ("x", "dt", "B", "C")
    parts = [
        _call({k: (v[:, lo:hi] if k in per_step else v) for k, v in p.items()}, "scan", False)[0]
        for lo, hi in [(0, 5), (5, 13)]
    ]
    np.testing.assert_allclose(y, jnp.concatenate(parts, 1), rtol=1e-5, atol=1e-5)


def test_causality_by_gradient():
    p = _inputs(12, seed=7)
    g = jax.grad(lambda x: jnp.sum(_call({**p, "x": x}, "chunked", chunk_size=4)[0][:, 5]))(p["x"])
    assert np.all(np.asarray(g[:, 6:]) == 0) and np.any(np.asarray(g[:, :5]) != 0)


def test_bad_inputs():
    p = _inputs(5)
    x, dt, A, B, C = p["x"], p["dt"], p["A"], p["B"], p["C"]
    with pytest.raises(ValueError, match="`x`"):
        ssd_ops.ssd(x[0], dt, A, B, C)
    with pytest.raises(ValueError, match="`dt`"):
        ssd_ops.ssd(x, dt[..., :2], A, B, C)
    with pytest.raises(ValueError, match="`A`"):
        ssd_ops.ssd(x, dt, A[:2], B, C)
    with pytest.raises(ValueError, match="`B`"):
        ssd_ops.ssd(x, dt, A, B[:, :, :1].repeat(3, 2), C)
    with pytest.raises(ValueError, match="`C`"):
        ssd_ops.ssd(x, dt, A, B, C[..., :2])
    with pytest.raises(ValueError, match="method"):
        ssd_ops.ssd(x, dt, A, B, C, method="fft")
