"""Tests for retention (RetNet) and RWKV-6 time mixing: all forms agree with their recurrences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.linear_attention import retention as R
from lib.ops.linear_attention import rwkv as W


def _rel(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-6)


def _qkv(length, b=2, h=3, dk=4, dv=5, seed=0):
    ks = jax.random.split(jax.random.key(seed), 5)
    q, k = (jax.random.normal(x, (b, length, h, dk)) for x in ks[:2])
    v = jax.random.normal(ks[2], (b, length, h, dv))
    s0 = jax.random.normal(ks[3], (b, h, dk, dv))
    return q, k, v, s0, ks[4]


@functools.partial(jax.jit, static_argnames=("method",))
def _retention_vg(q, k, v, s0, method):
    def loss(q, k, v, s0):
        o, s = R.retention(q, k, v, initial_state=s0, return_final_state=True, method=method,
                           chunk_size=16)  # fmt: skip
        return jnp.sum(jnp.sin(o)) + jnp.sum(jnp.cos(s)), (o, s)

    return jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(q, k, v, s0)


@pytest.mark.parametrize("length", [1, 37])
def test_retention_forms_agree(length):
    q, k, v, s0, _ = _qkv(length)
    (_, (o_r, s_r)), g_r = _retention_vg(q, k, v, s0, "ref")
    for method in ["parallel", "chunked"]:
        (_, (o, s)), g = _retention_vg(q, k, v, s0, method)
        assert _rel(o, o_r) < 1e-5 and _rel(s, s_r) < 1e-5
        for a, b in zip(g, g_r):
            assert _rel(a, b) < 1e-4


def test_retention_explicit_decay_matrix_and_default_decays():
    q, k, v, _, _ = _qkv(7, b=1, h=2)
    gamma = np.array([0.9, 0.5])
    t = np.arange(7)
    d = np.where(t[:, None] >= t[None, :], gamma[:, None, None] ** (t[:, None] - t[None, :]), 0.0)
    qn, kn, vn = (np.asarray(x, np.float64) for x in (q, k, v))
    want = np.einsum("hts,bthk,bshk,bshv->bthv", d, qn, kn, vn) / 2.0
    got = R.retention(q, k, v, gamma=jnp.asarray(gamma), method="parallel")
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(R.retnet_decays(3), [1 - 1 / 32, 1 - 1 / 64, 1 - 1 / 128])


def test_retention_step_and_bf16():
    q, k, v, s0, _ = _qkv(6)
    o, s = R.retention(q, k, v, initial_state=s0, return_final_state=True, method="ref")
    state, outs = s0, []
    for t in range(6):
        state, o_t = R.retention_step(state, q[:, t], k[:, t], v[:, t])
        outs.append(o_t)
    np.testing.assert_allclose(jnp.stack(outs, 1), o, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(state, s, rtol=1e-5, atol=1e-5)
    lo = R.retention(
        *(x.astype(jnp.bfloat16) for x in (q, k, v)), initial_state=s0, method="parallel"
    )
    assert lo.dtype == jnp.bfloat16 and _rel(lo, o) < 3e-2


def _rwkv_inputs(length, strength=1.0, b=2, h=2, dk=4, dv=3):
    r, k, v, s0, key = _qkv(length, b=b, h=h, dk=dk, dv=dv)
    k1, k2 = jax.random.split(key)
    g = -strength * jnp.exp(jax.random.normal(k1, r.shape))
    u = jax.random.normal(k2, (h, dk))
    return r, k, v, g, u, s0


@functools.partial(jax.jit, static_argnames=("method",))
def _rwkv_vg(r, k, v, g, u, s0, method):
    def loss(r, k, v, g, u, s0):
        o, s = W.rwkv6(r, k, v, g, u, initial_state=s0, return_final_state=True, method=method,
                       chunk_size=16)  # fmt: skip
        return jnp.sum(jnp.sin(o)) + jnp.sum(jnp.cos(s)), (o, s)

    return jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4, 5), has_aux=True)(r, k, v, g, u, s0)


@pytest.mark.parametrize("length,strength", [(1, 1.0), (37, 1.0), (40, 20.0)])
def test_rwkv6_chunked_matches_ref(length, strength):
    args = _rwkv_inputs(length, strength)
    (_, (o_r, s_r)), g_r = _rwkv_vg(*args, "ref")
    (_, (o_c, s_c)), g_c = _rwkv_vg(*args, "chunked")
    assert np.isfinite(np.asarray(o_c)).all()
    assert _rel(o_c, o_r) < 1e-5 and _rel(s_c, s_r) < 1e-5
    for a, b in zip(g_c, g_r):
        assert np.isfinite(np.asarray(a)).all() and _rel(a, b) < 1e-4


def test_rwkv6_explicit_formula():
    """o_t = r_t . (sum_{s<t} prod_{s<j<t} w_j k_s v_s + u k_t v_t), written in numpy."""
    r, k, v, g, u, _ = (np.asarray(x, np.float64) for x in _rwkv_inputs(5, b=1, h=1, dk=2, dv=2))
    want = np.zeros((5, 2))
    for t in range(5):
        S = np.zeros((2, 2))
        for s in range(t):
            S += np.exp(g[0, s + 1 : t, 0].sum(0))[:, None] * np.outer(k[0, s, 0], v[0, s, 0])
        S += u[0][:, None] * np.outer(k[0, t, 0], v[0, t, 0])
        want[t] = r[0, t, 0] @ S
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    got = W.rwkv6(f32(r), f32(k), f32(v), f32(g), f32(u), method="chunked")
    np.testing.assert_allclose(got[0, :, 0], want, rtol=1e-5, atol=1e-6)


def test_token_shift():
    x = jnp.arange(12.0).reshape(1, 4, 3)
    np.testing.assert_array_equal(W.token_shift(x)[0, 0], 0.0)
    np.testing.assert_array_equal(W.token_shift(x)[0, 1:], x[0, :-1])
    np.testing.assert_array_equal(W.token_shift(x, prev=-jnp.ones((1, 3)))[0, 0], -1.0)


def test_bad_inputs_name_the_argument():
    q, k, v, s0, _ = _qkv(6)
    with pytest.raises(ValueError, match="gamma"):
        R.retention(q, k, v, gamma=jnp.ones(2) * 0.9)
    with pytest.raises(ValueError, match="method"):
        R.retention(q, k, v, method="fft")
    with pytest.raises(ValueError, match="initial_state"):
        R.retention(q, k, v, initial_state=s0[0])
    r, k, v, g, u, _ = _rwkv_inputs(6)
    with pytest.raises(ValueError, match="`u`"):
        W.rwkv6(r, k, v, g, u[:1])
    with pytest.raises(ValueError, match="`g`"):
        W.rwkv6(r, k, v, g[..., :2], u)
