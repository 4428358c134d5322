"""Tests for lib.ops.attention.softmax: fast forms vs the einsum reference, cache decoding, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.attention import softmax as _A


class A:
    """The ops under test, jitted (eager dispatch of every small op would dominate)."""

    causal_attention = staticmethod(jax.jit(_A.causal_attention, static_argnames=("method",)))
    local_attention = staticmethod(
        jax.jit(_A.local_attention, static_argnames=("window", "method"))
    )
    chunked_attention = staticmethod(
        jax.jit(_A.chunked_attention, static_argnames=("chunk_size", "method"))
    )
    cached_attention = staticmethod(
        jax.jit(_A.cached_attention, static_argnames=("window", "chunk_size"))
    )
    attention_step = staticmethod(
        jax.jit(_A.attention_step, static_argnames=("window", "chunk_size"))
    )
    attention_ref = staticmethod(jax.jit(_A.attention_ref))
    position_mask = staticmethod(_A.position_mask)
    init_kv_cache = staticmethod(_A.init_kv_cache)
    rotary_embedding = staticmethod(_A.rotary_embedding)


def _qkv(length, h=2, hk=2, d=8, b=2, dtype=jnp.float32, seed=0):
    kq, kk, kv = jax.random.split(jax.random.key(seed), 3)
    q = jax.random.normal(kq, (b, length, h, d), dtype)
    k = jax.random.normal(kk, (b, length, hk, d), dtype)
    v = jax.random.normal(kv, (b, length, hk, d), dtype)
    return q, k, v


def _naive(q, k, v, allowed):
    """Loop-free numpy softmax attention with an explicit (i, j) predicate, float64."""
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    rep = q.shape[2] // k.shape[2]
    k, v = np.repeat(k, rep, axis=2), np.repeat(v, rep, axis=2)
    length = q.shape[1]
    i, j = np.meshgrid(np.arange(length), np.arange(length), indexing="ij")
    s = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1])
    s = np.where(allowed(i, j), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", p, v)


CAUSAL = lambda i, j: j <= i


@pytest.mark.parametrize("length", [1, 37])
@pytest.mark.parametrize("method", ["ref", "xla"])
def test_causal_matches_naive(length, method):
    q, k, v = _qkv(length, h=4, hk=2)
    out = A.causal_attention(q, k, v, method=method)
    np.testing.assert_allclose(out, _naive(q, k, v, CAUSAL), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length,window", [(1, 4), (37, 5), (20, 64)])
@pytest.mark.parametrize("method", ["ref", "xla", "blocked"])
def test_local_matches_naive(length, window, method):
    q, k, v = _qkv(length)
    out = A.local_attention(q, k, v, window=window, method=method)
    want = _naive(q, k, v, lambda i, j: (j <= i) & (i - j < window))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("length,chunk", [(1, 4), (37, 8), (10, 1)])
@pytest.mark.parametrize("method", ["ref", "blocked"])
def test_chunked_matches_naive(length, chunk, method):
    q, k, v = _qkv(length, h=4, hk=1)
    out = A.chunked_attention(q, k, v, chunk_size=chunk, method=method)
    want = _naive(q, k, v, lambda i, j: (j <= i) & (i // chunk == j // chunk))
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_gradients_match_reference():
    q, k, v = _qkv(23)

    def loss(fn, q, k, v):
        return jnp.sum(jnp.sin(fn(q, k, v)))

    cases = [
        (lambda *a: A.causal_attention(*a, method="xla"), lambda *a: A.causal_attention(*a, method="ref")),
        (lambda *a: A.local_attention(*a, window=6, method="blocked"), lambda *a: A.local_attention(*a, window=6, method="ref")),
        (lambda *a: A.chunked_attention(*a, chunk_size=5, method="blocked"), lambda *a: A.chunked_attention(*a, chunk_size=5, method="ref")),
    ]  # fmt: skip
    for fast, ref in cases:
        g_fast = jax.grad(loss, argnums=(1, 2, 3))(fast, q, k, v)
        g_ref = jax.grad(loss, argnums=(1, 2, 3))(ref, q, k, v)
        for a, b in zip(g_fast, g_ref):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_bfloat16_close_to_float32():
    q, k, v = _qkv(37)
    want = A.local_attention(q, k, v, window=7, method="ref")
    qb, kb, vb = (x.astype(jnp.bfloat16) for x in (q, k, v))
    for method in ["ref", "xla", "blocked"]:
        out = A.local_attention(qb, kb, vb, window=7, method=method)
        assert out.dtype == jnp.bfloat16
        np.testing.assert_allclose(out.astype(jnp.float32), want, rtol=5e-2, atol=5e-2)


def test_long_sequence_local_blocked_finite_and_exact():
    q, k, v = _qkv(4096, h=1, hk=1, d=4, b=1)
    fast = jax.jit(lambda q, k, v: A.local_attention(q, k, v, window=32, method="blocked"))
    xla = jax.jit(lambda q, k, v: A.local_attention(q, k, v, window=32, method="xla"))
    out = fast(q, k, v)
    assert np.isfinite(np.asarray(out)).all()
    np.testing.assert_allclose(out, xla(q, k, v), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mask", [{}, {"window": 3}, {"chunk_size": 4}])
def test_cache_prefill_then_steps_equals_full(mask):
    q, k, v = _qkv(11, h=4, hk=2)
    pos = jnp.arange(11)
    want = A.attention_ref(q, k, v, mask=A.position_mask(pos, pos, **mask))
    cache = A.init_kv_cache(2, 16, 2, 8)
    cache, head = A.cached_attention(cache, q[:, :5], k[:, :5], v[:, :5], **mask)
    outs = [head]
    for t in range(5, 11):
        cache, o = A.attention_step(cache, q[:, t], k[:, t], v[:, t], **mask)
        outs.append(o[:, None])
    assert int(cache.index) == 11
    np.testing.assert_allclose(jnp.concatenate(outs, 1), want, rtol=1e-5, atol=1e-5)


def test_causality_by_gradients():
    q, k, v = _qkv(16)
    t = 6
    for fn in [
        lambda k, v: A.causal_attention(q, k, v),
        lambda k, v: A.local_attention(q, k, v, window=4, method="blocked"),
        lambda k, v: A.chunked_attention(q, k, v, chunk_size=4),
    ]:
        gk, gv = jax.grad(lambda k, v, f=fn: f(k, v)[:, t].sum(), argnums=(0, 1))(k, v)
        assert np.all(np.asarray(gk[:, t + 1 :]) == 0) and np.all(np.asarray(gv[:, t + 1 :]) == 0)
        assert np.any(np.asarray(gv[:, t]) != 0)


def test_rotary_relative_positions():
    """RoPE makes q.k depend only on the position difference."""
    q, k, _ = _qkv(1, h=1, hk=1)

    def score(i, j):
        qi = A.rotary_embedding(q, jnp.array([i]))
        kj = A.rotary_embedding(k, jnp.array([j]))
        return jnp.sum(qi * kj)

    np.testing.assert_allclose(score(3, 1), score(10, 8), rtol=1e-4)
    np.testing.assert_allclose(score(0, 0), jnp.sum(q * k), rtol=1e-5)


def test_bad_inputs_name_the_argument():
    q, k, v = _qkv(8)
    with pytest.raises(ValueError, match="`q`"):
        A.causal_attention(q[0], k, v)
    with pytest.raises(ValueError, match="`k`"):
        A.causal_attention(q, k[..., :4], v)
    with pytest.raises(ValueError, match="method"):
        A.causal_attention(q, k, v, method="flash")
    with pytest.raises(ValueError, match="window"):
        A.local_attention(q, k, v, window=0)
    with pytest.raises(ValueError, match="chunk_size"):
        A.chunked_attention(q, k, v, chunk_size=-1)
    with pytest.raises(ValueError, match="heads"):
        A.causal_attention(q, k[:, :, :1].repeat(3, 2), v[:, :, :1].repeat(3, 2))
