"""Tests for lib.ops.ssm.selective_scan: forms vs the lax.scan reference, step, resets."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.ssm import selective as ssm


def _inputs(length, b=2, d=3, n=4, seed=0, dtype=jnp.float32):
    ks = jax.random.split(jax.random.PRNGKey(seed), 9)
    u = jax.random.normal(ks[0], (b, length, d))
    delta = jax.random.normal(ks[1], (b, length, d)) - 1.0
    A = -jnp.exp(jax.random.normal(ks[2], (d, n)))
    B = jax.random.normal(ks[3], (b, length, n))
    C = jax.random.normal(ks[4], (b, length, n))
    D = jax.random.normal(ks[5], (d,))
    z = jax.random.normal(ks[6], (b, length, d))
    bias = 0.1 * jax.random.normal(ks[7], (d,))
    h0 = jax.random.normal(ks[8], (b, d, n))
    cast = lambda v: v.astype(dtype)
    return dict(u=cast(u), delta=cast(delta), A=A, B=cast(B), C=cast(C), D=D, z=cast(z),
                delta_bias=bias, h0=h0)  # fmt: skip


def _naive(u, delta, A, B, C, D, z, delta_bias, h0):
    """Float64 NumPy loop straight from the paper's equations."""
    u, delta, A, B, C, D, z, bias = (
        np.asarray(v, np.float64) for v in (u, delta, A, B, C, D, z, delta_bias)
    )
    dt = np.log1p(np.exp(delta + bias))
    h = np.asarray(h0, np.float64).copy()
    y = np.zeros_like(u)
    for t in range(u.shape[1]):
        h = np.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        y[:, t] = np.einsum("bdn,bn->bd", h, C[:, t]) + D * u[:, t]
    return y * z / (1 + np.exp(-z)), h


_selective_scan = jax.jit(
    ssm.selective_scan,
    static_argnames=("delta_softplus", "return_final_state", "method", "chunk_size"),
)


def _call(p, method, with_h0=True, chunk_size=8, **kw):
    return _selective_scan(
        p["u"], p["delta"], p["A"], p["B"], p["C"], p["D"], z=p["z"], delta_bias=p["delta_bias"],
        delta_softplus=True, initial_state=p["h0"] if with_h0 else None, return_final_state=True,
        method=method, chunk_size=chunk_size, **kw,
    )  # fmt: skip


def _rel(x, y):
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    return np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12)


@pytest.mark.parametrize("length", [1, 37])
def test_reference_matches_numpy(length):
    p = _inputs(length)
    y, h = _call(p, "scan")
    y_np, h_np = _naive(
        p["u"], p["delta"], p["A"], p["B"], p["C"], p["D"], p["z"], p["delta_bias"], p["h0"]
    )
    assert _rel(y, y_np) < 1e-5 and _rel(h, h_np) < 1e-5


@pytest.mark.parametrize("length, with_h0", [(1, False), (37, True)])
def test_fast_forms_values_and_grads(length, with_h0):
    p = _inputs(length, seed=1)
    names = ("u", "delta", "A", "B", "C", "D", "z", "delta_bias", "h0")

    def loss(args, method):
        y, h = _call(dict(zip(names, args)), method, with_h0=with_h0)
        return jnp.sum(y * jnp.cos(jnp.arange(y.size).reshape(y.shape))) + jnp.sum(h**2)

    args = tuple(p[k] for k in names)
    ref_val, ref_g = jax.jit(jax.value_and_grad(loss), static_argnums=1)(args, "scan")
    for method in ("associative", "chunked"):
        val, g = jax.jit(jax.value_and_grad(loss), static_argnums=1)(args, method)
        assert _rel(val, ref_val) < 1e-5, method
        for name, gi, ri in zip(names, g, ref_g):
            if name == "h0" and not with_h0:
                continue
            assert _rel(gi, ri) < 1e-4, (method, name)


def test_long_sequence_fp32():
    p = _inputs(4096, b=1, d=2, n=2, seed=2)
    y_np, _ = _naive(
        p["u"], p["delta"], p["A"], p["B"], p["C"], p["D"], p["z"], p["delta_bias"], p["h0"]
    )
    for method in ("scan", "chunked"):
        y, h = jax.jit(lambda p, m=method: _call(p, m, chunk_size=256))(p)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(h))
        assert _rel(y, y_np) < 1e-4, method


def test_bfloat16():
    p32 = _inputs(37, seed=3)
    p16 = _inputs(37, seed=3, dtype=jnp.bfloat16)
    y32, _ = _call(p32, "scan")
    for method in ("scan", "chunked"):
        y16, _ = _call(p16, method)
        assert y16.dtype == jnp.bfloat16
        assert _rel(y16.astype(jnp.float32), y32) < 5e-2, method


def test_chunk_size_invariance():
    p = _inputs(37, seed=4)
    ref, href = _call(p, "scan")
    for chunk in (1, 5, 64):
        y, h = _call(p, "chunked", chunk_size=chunk)
        assert _rel(y, ref) < 1e-5 and _rel(h, href) < 1e-5


def test_step_equals_full():
    p = _inputs(9, seed=5)
    full, last = _call(p, "auto")
    state = ssm.SelectiveScanState(h=p["h0"])
    outs = []
    step = jax.jit(ssm.selective_scan_step, static_argnames="delta_softplus")
    for t in range(9):
        state, y_t = step(
            state, p["u"][:, t], p["delta"][:, t], p["A"], p["B"][:, t], p["C"][:, t], p["D"],
            z_t=p["z"][:, t], delta_bias=p["delta_bias"], delta_softplus=True,
        )  # fmt: skip
        outs.append(y_t)
    assert _rel(jnp.stack(outs, 1), full) < 1e-5 and _rel(state.h, last) < 1e-5
    assert ssm.selective_scan_init_state(2, 3, 4).h.shape == (2, 3, 4)


@pytest.mark.parametrize("method", ["scan", "chunked"])
def test_segment_ids_equal_separate_sequences(method):
    p = _inputs(13, b=1, seed=6)
    seg = jnp.array([[0] * 6 + [1] * 7])
    y, _ = _call(p, method, with_h0=False, chunk_size=4, segment_ids=seg)
    parts = []
    for lo, hi in [(0, 6), (6, 13)]:
        q = {k: (v[:, lo:hi] if k in ("u", "delta", "B", "C", "z") else v) for k, v in p.items()}
        parts.append(_call(q, "scan", with_h0=False)[0])
    np.testing.assert_allclose(y, jnp.concatenate(parts, 1), rtol=1e-5, atol=1e-5)


def test_causality_by_gradient():
    p = _inputs(12, seed=7)
    g = jax.grad(lambda u: jnp.sum(_call({**p, "u": u}, "chunked")[0][:, 5]))(p["u"])
    assert np.all(np.asarray(g[:, 6:]) == 0) and np.any(np.asarray(g[:, :5]) != 0)


def test_bad_inputs():
    p = _inputs(5)
    u, delta, A, B, C = p["u"], p["delta"], p["A"], p["B"], p["C"]
    with pytest.raises(ValueError, match="`u`"):
        ssm.selective_scan(u[0], delta, A, B, C)
    with pytest.raises(ValueError, match="`delta`"):
        ssm.selective_scan(u, delta[:, :4], A, B, C)
    with pytest.raises(ValueError, match="`A`"):
        ssm.selective_scan(u, delta, A[:2], B, C)
    with pytest.raises(ValueError, match="`B`"):
        ssm.selective_scan(u, delta, A, B[..., :2], C)
    with pytest.raises(ValueError, match="`z`"):
        ssm.selective_scan(u, delta, A, B, C, z=u[:, :2])
    with pytest.raises(ValueError, match="`initial_state`"):
        ssm.selective_scan(u, delta, A, B, C, initial_state=p["h0"][:1])
    with pytest.raises(ValueError, match="method"):
        ssm.selective_scan(u, delta, A, B, C, method="fft")
