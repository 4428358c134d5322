"""Tests for lib.ops.conv.fsmn: FSMN memory (causal and bidirectional, dilated) vs a NumPy loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.conv import fsmn


def _np_fsmn(h, left, right, dil, residual=True):
    b, l, d = h.shape
    m = h.copy() if residual else np.zeros_like(h)
    for t in range(l):
        for i in range(left.shape[0]):
            if t - i * dil >= 0:
                m[:, t] += left[i] * h[:, t - i * dil]
        if right is not None:
            for j in range(1, right.shape[0] + 1):
                if t + j * dil < l:
                    m[:, t] += right[j - 1] * h[:, t + j * dil]
    return m


@pytest.mark.parametrize(
    "bidirectional,length,n1,dil",
    [(False, 1, 3, 1), (True, 1, 2, 1), (True, 37, 5, 1), (False, 37, 4, 3), (True, 37, 4, 3)],
)
def test_matches_numpy(bidirectional, length, n1, dil):
    h = jax.random.normal(jax.random.PRNGKey(length), (2, length, 3))
    left = jax.random.normal(jax.random.PRNGKey(1), (n1, 3))
    right = jax.random.normal(jax.random.PRNGKey(2), (2, 3)) if bidirectional else None
    want = _np_fsmn(*(None if a is None else np.float64(a) for a in (h, left, right)), dil)
    run = jax.jit(fsmn.fsmn, static_argnames=("dilation", "method"))
    for m in ("ref", "conv"):
        got = run(h, left, right, dilation=dil, method=m)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_long_sequence_values_and_grads():
    length = 4096
    h = jax.random.normal(jax.random.PRNGKey(0), (1, length, 2))
    left = jax.random.normal(jax.random.PRNGKey(1), (8, 2)) / 3
    right = jax.random.normal(jax.random.PRNGKey(2), (4, 2)) / 3
    w = jnp.cos(jnp.arange(length * 2, dtype=jnp.float32)).reshape(1, length, 2)

    @jax.jit
    def forms(h, left, right):
        out = []
        for m in ("ref", "conv"):
            loss = lambda *a, m=m: jnp.sum(w * fsmn.fsmn(*a, dilation=2, method=m))
            out.append(jax.value_and_grad(loss, argnums=(0, 1, 2))(h, left, right))
        return out

    (v_ref, g_ref), (v, g) = forms(h, left, right)
    np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-3)
    for a, r in zip(g, g_ref):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-3)


def test_state_step_and_bfloat16():
    h = jax.random.normal(jax.random.PRNGKey(0), (2, 23, 3))
    left = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    run = jax.jit(fsmn.fsmn, static_argnames=("dilation", "return_final_state", "residual"))
    full = run(h, left, dilation=2)
    m1, s = run(h[:, :9], left, dilation=2, return_final_state=True)
    m2 = run(h[:, 9:], left, dilation=2, initial_state=s)
    np.testing.assert_allclose(jnp.concatenate([m1, m2], 1), full, rtol=1e-5, atol=1e-5)
    state = fsmn.fsmn_init_state(2, 4, 3, dilation=2)
    step = jax.jit(fsmn.fsmn_step, static_argnames=("dilation",))
    for t in range(23):
        state, m_t = step(state, h[:, t], left, dilation=2)
        np.testing.assert_allclose(m_t, full[:, t], rtol=1e-5, atol=1e-5)
    got = run(h.astype(jnp.bfloat16), left.astype(jnp.bfloat16), dilation=2)
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(jnp.float32), full, rtol=3e-2, atol=5e-2)
    no_res = run(h, left, dilation=2, residual=False)
    np.testing.assert_allclose(no_res + h, full, rtol=1e-6, atol=1e-6)


def test_causal_by_gradients_and_lookahead_reaches_forward():
    h = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 2))
    left = jax.random.normal(jax.random.PRNGKey(1), (3, 2))
    right = jax.random.normal(jax.random.PRNGKey(2), (2, 2))
    g, g2 = jax.jit(
        lambda h: (
            jax.grad(lambda h: fsmn.fsmn(h, left, dilation=2)[:, 8].sum())(h),
            jax.grad(lambda h: fsmn.fsmn(h, left, right, dilation=2)[:, 8].sum())(h),
        )
    )(h)
    assert np.all(g[:, 9:] == 0) and np.any(g[:, :9] != 0)
    g = g2
    assert np.any(g[:, 12] != 0) and np.all(g[:, 13:] == 0)  # exactly 2 taps * dilation 2 ahead


def test_bad_inputs_name_the_argument():
    h = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`h`"):
        fsmn.fsmn(h[0], jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="`left`"):
        fsmn.fsmn(h, jnp.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="`right`"):
        fsmn.fsmn(h, jnp.zeros((2, 3)), jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="`right`"):
        fsmn.fsmn(h, jnp.zeros((2, 3)), jnp.zeros((2, 3)), return_final_state=True)
    with pytest.raises(ValueError, match="method"):
        fsmn.fsmn(h, jnp.zeros((2, 3)), method="fft")
