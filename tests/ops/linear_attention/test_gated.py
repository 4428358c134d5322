"""Tests for lib.ops.linear_attention.gla: chunked vs reference, step, resets, decays, errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.linear_attention.gated import gla as _gla
from lib.ops.linear_attention.gated import gla_ref, gla_step

# jit keeps these tests fast (eager dispatch of every small op dominates otherwise)
gla = jax.jit(_gla, static_argnames=("return_final_state", "chunk_size", "method", "scale"))


def _inputs(length, scalar=False, strength=1.0, b=2, h=2, dk=8, dv=6, seed=0, dtype=jnp.float32):
    ks = jax.random.split(jax.random.key(seed), 5)
    q = jax.random.normal(ks[0], (b, length, h, dk))
    k = jax.random.normal(ks[1], (b, length, h, dk))
    v = jax.random.normal(ks[2], (b, length, h, dv))
    g = -strength * jax.nn.softplus(
        jax.random.normal(ks[3], (b, length, h) + ((dk,) * (not scalar)))
    )
    s0 = jax.random.normal(ks[4], (b, h, dk, dv))
    return tuple(x.astype(dtype) for x in (q, k, v, g)) + (s0,)


def _rel(a, b):
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-6)


@functools.partial(jax.jit, static_argnames=("method", "chunk_size", "with_state"))
def _value_and_grads(q, k, v, g, s0, method, chunk_size=64, with_state=True):
    def loss(q, k, v, g, s0):
        o, s = gla(q, k, v, g, initial_state=s0 if with_state else None, return_final_state=True,
                   method=method, chunk_size=chunk_size)  # fmt: skip
        o32 = o.astype(jnp.float32)
        return jnp.sum(jnp.sin(o32)) + jnp.sum(jnp.cos(s)), (o, s)

    return jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4), has_aux=True)(q, k, v, g, s0)


@pytest.mark.parametrize("scalar,length,with_state", [(False, 37, True), (True, 37, False)])
def test_chunked_matches_ref_values_and_grads(scalar, length, with_state):
    args = _inputs(length, scalar)
    (_, (o_r, s_r)), g_r = _value_and_grads(*args, method="ref", with_state=with_state)
    (_, (o_c, s_c)), g_c = _value_and_grads(*args, "chunked", 16, with_state)
    assert _rel(o_c, o_r) < 1e-5 and _rel(s_c, s_r) < 1e-5
    for a, b in zip(g_c, g_r):
        assert _rel(a, b) < 1e-4


def test_length_one():
    for scalar in (False, True):
        q, k, v, g, s0 = _inputs(1, scalar)
        o, s = gla(q, k, v, g, initial_state=s0, return_final_state=True, method="chunked")
        decay = jnp.exp(g[:, 0])[..., None] if not scalar else jnp.exp(g[:, 0])[..., None, None]
        want_s = decay * s0 + k[:, 0, ..., None] * v[:, 0, ..., None, :]
        want_o = jnp.einsum("bhk,bhkv->bhv", q[:, 0], want_s) / np.sqrt(q.shape[-1])
        np.testing.assert_allclose(s, want_s, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(o[:, 0], want_o, rtol=1e-5, atol=1e-5)


def test_long_sequence_4096_no_nan_and_close():
    args = _inputs(4096, b=1, h=1, dk=4, dv=4)
    (_, (o_r, s_r)), g_r = _value_and_grads(*args, method="ref")
    (_, (o_c, s_c)), g_c = _value_and_grads(*args, method="chunked")
    assert np.isfinite(np.asarray(o_c)).all() and all(np.isfinite(np.asarray(x)).all() for x in g_c)
    assert _rel(o_c, o_r) < 1e-4 and _rel(s_c, s_r) < 1e-4
    for a, b in zip(g_c, g_r):
        assert _rel(a, b) < 1e-4


def test_bfloat16_close_to_float32():
    for scalar, methods in ((False, ("ref", "chunked")), (True, ("chunked",))):
        q, k, v, g, s0 = _inputs(37, scalar)
        want = gla(q, k, v, g, initial_state=s0, method="ref")
        lo = [x.astype(jnp.bfloat16) for x in (q, k, v, g)]
        for method in methods:
            out = gla(*lo, initial_state=s0, method=method, chunk_size=16)
            assert out.dtype == jnp.bfloat16
            assert _rel(out, want) < 3e-2


def test_strong_decays_stay_finite_and_exact():
    q, k, v, g, s0 = _inputs(37, strength=20.0)  # same shapes as above: compiled once
    assert float(g.min()) < -40
    (_, (o_r, s_r)), g_r = _value_and_grads(q, k, v, g, s0, method="ref", with_state=True)
    (_, (o_c, s_c)), g_c = _value_and_grads(q, k, v, g, s0, "chunked", 16, True)
    assert np.isfinite(np.asarray(o_c)).all() and all(np.isfinite(np.asarray(x)).all() for x in g_c)
    assert _rel(o_c, o_r) < 1e-4 and _rel(s_c, s_r) < 1e-4
    for a, b in zip(g_c, g_r):
        assert _rel(a, b) < 1e-4
    q, k, v, g, _ = _inputs(150, scalar=True, strength=20.0)  # scalar gate, chunk of 64: values
    o_c = gla(q, k, v, g, method="chunked")
    assert np.isfinite(np.asarray(o_c)).all() and _rel(o_c, gla(q, k, v, g, method="ref")) < 1e-4


def test_chunk_size_invariance():
    q, k, v, g, s0 = _inputs(45)
    outs = [gla(q, k, v, g, initial_state=s0, method="chunked", chunk_size=cs) for cs in (1, 5, 64)]
    for o in outs[1:]:
        assert _rel(o, outs[0]) < 1e-5


def _one_step(state, x):
    return gla_step(state, *x)


def test_step_equals_full():
    for scalar in (False, True):
        q, k, v, g, s0 = _inputs(9, scalar)
        o, s = gla(q, k, v, g, initial_state=s0, return_final_state=True)
        xs = [jnp.swapaxes(x, 0, 1) for x in (q, k, v, g)]
        state, outs = jax.jit(lambda s0, xs: jax.lax.scan(_one_step, s0, xs))(s0, xs)
        np.testing.assert_allclose(jnp.swapaxes(outs, 0, 1), o, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(state, s, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("method", ["ref", "chunked"])
def test_segment_resets_equal_separate_sequences(method):  # noqa: D103
    q, k, v, g, s0 = _inputs(30, b=1)
    seg = jnp.array([[3] * 11 + [7] * 19])
    o, s = gla(q, k, v, g, initial_state=s0, return_final_state=True, segment_ids=seg,
               method=method, chunk_size=8)  # fmt: skip
    ref = jax.jit(lambda *a, s0=None: gla_ref(*a, initial_state=s0))
    first = ref(q[:, :11], k[:, :11], v[:, :11], g[:, :11], s0=s0)[0]
    second, s2 = ref(q[:, 11:], k[:, 11:], v[:, 11:], g[:, 11:])
    np.testing.assert_allclose(o, jnp.concatenate([first, second], 1), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s, s2, rtol=1e-5, atol=1e-5)


def test_matches_explicit_formula():
    """o_t = scale * sum_{s<=t} (q_t * prod_{s<r<=t} exp(g_r)) . k_s v_s, written in numpy."""
    q, k, v, g, _ = (np.asarray(x, np.float64) for x in _inputs(6, b=1, h=1, dk=3, dv=2))
    want = np.zeros((6, 2))
    for t in range(6):
        for s in range(t + 1):
            decay = np.exp(g[0, s + 1 : t + 1, 0].sum(0))
            want[t] += (q[0, t, 0] * decay * k[0, s, 0]).sum() * v[0, s, 0] / np.sqrt(3)
    got = gla(*(jnp.asarray(x, jnp.float32) for x in (q, k, v, g)), method="chunked", chunk_size=4)
    np.testing.assert_allclose(got[0, :, 0], want, rtol=1e-5, atol=1e-6)


def test_causality_by_gradients():
    q, k, v, g, _ = _inputs(20)
    t = 9
    f = jax.jit(
        jax.grad(
            lambda k, v, g: gla(q, k, v, g, method="chunked", chunk_size=8)[:, t].sum(),
            argnums=(0, 1, 2),
        )
    )
    for grad in f(k, v, g):
        assert np.all(np.asarray(grad[:, t + 1 :]) == 0)
        assert np.any(np.asarray(grad[:, t]) != 0)


def test_bad_inputs_name_the_argument():
    q, k, v, g, s0 = _inputs(8)
    with pytest.raises(ValueError, match="`q`"):
        gla(q[0], k, v, g)
    with pytest.raises(ValueError, match="`k`"):
        gla(q, k[:, :4], v, g)
    with pytest.raises(ValueError, match="`v`"):
        gla(q, k, v[:, :4], g)
    with pytest.raises(ValueError, match="`g`"):
        gla(q, k, v, g[..., :3])
    with pytest.raises(ValueError, match="initial_state"):
        gla(q, k, v, g, initial_state=s0[:, :1])
    with pytest.raises(ValueError, match="segment_ids"):
        gla(q, k, v, g, segment_ids=jnp.zeros((2, 7), jnp.int32))
    with pytest.raises(ValueError, match="method"):
        gla(q, k, v, g, method="fused")
    with pytest.raises(ValueError, match="chunk_size"):
        gla(q, k, v, g, chunk_size=0)


def test_pallas_method_falls_back_without_accelerator():
    q, k, v, g, s0 = _inputs(37)
    got = gla(q, k, v, g, initial_state=s0, method="pallas")
    np.testing.assert_allclose(
        got, gla(q, k, v, g, initial_state=s0, method="ref"), rtol=1e-5, atol=1e-5
    )
