"""Tests for lib.ops.scan.linear_recurrence: every form against the lax.scan reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.scan import linear as scan

# Jitted once per static configuration: eager associative scans would compile op by op.
lr = jax.jit(
    scan.linear_recurrence,
    static_argnames=("reverse", "method", "return_final_state", "chunk_size"),
)

FAST = ("associative", "chunked")  # "auto"/"pallas" resolve to one of these on a CPU


def _inputs(key, shape, dtype=jnp.float32, complex_=False):
    ka, kb, kc, kd = jax.random.split(key, 4)
    a = jax.random.uniform(ka, shape, minval=0.5, maxval=1.0)
    b = jax.random.normal(kb, shape)
    if complex_:
        phase = jax.random.uniform(kc, shape, maxval=2 * np.pi)
        a = a * jnp.exp(1j * phase)
        b = b + 1j * jax.random.normal(kd, shape)
    return a.astype(dtype) if not complex_ else a, b.astype(dtype) if not complex_ else b


def _naive(a, b, h0, reverse=False):
    a, b = np.asarray(a, np.complex128), np.asarray(b, np.complex128)
    h = np.zeros_like(b)
    state = np.zeros_like(b[:, 0]) if h0 is None else np.asarray(h0, np.complex128)
    order = range(b.shape[1] - 1, -1, -1) if reverse else range(b.shape[1])
    for t in order:
        state = a[:, t] * state + b[:, t]
        h[:, t] = state
    return h


def _rel(x, y):
    x, y = np.asarray(x, np.complex128), np.asarray(y, np.complex128)
    return np.max(np.abs(x - y)) / (np.max(np.abs(y)) + 1e-12)


@pytest.mark.parametrize(
    "length, reverse, with_h0", [(1, False, True), (37, True, False), (37, False, True)]
)
def test_reference_matches_numpy(length, reverse, with_h0):
    a, b = _inputs(jax.random.PRNGKey(0), (2, length, 3))
    h0 = jax.random.normal(jax.random.PRNGKey(1), (2, 3)) if with_h0 else None
    h = lr(a, b, h0, reverse=reverse, method="scan")
    np.testing.assert_allclose(h, _naive(a, b, h0, reverse).real, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "length, complex_, reverse", [(1, False, False), (37, False, True), (37, True, False)]
)
def test_fast_forms_values_and_grads(length, complex_, reverse):
    a, b = _inputs(jax.random.PRNGKey(2), (2, length, 2, 3), complex_=complex_)
    h0 = jax.random.normal(jax.random.PRNGKey(3), (2, 2, 3)).astype(b.dtype)
    w = jax.random.normal(jax.random.PRNGKey(4), b.shape).astype(b.dtype)

    def loss(a, b, h0, method):
        h, last = lr(
            a, b, h0, reverse=reverse, method=method, chunk_size=8, return_final_state=True
        )
        return jnp.sum(jnp.real(h * w)) + jnp.sum(jnp.abs(last) ** 2)

    ref_val, ref_grads = jax.value_and_grad(loss, (0, 1, 2))(a, b, h0, "scan")
    for method in FAST:
        val, grads = jax.value_and_grad(loss, (0, 1, 2))(a, b, h0, method)
        assert _rel(val, ref_val) < 1e-5, method
        for g, rg in zip(grads, ref_grads):
            assert _rel(g, rg) < 1e-5, method


def test_custom_vjp_matches_autodiff_of_plain_scan():
    """The hand-written backward equals autodiff through an unwrapped lax.scan."""
    a, b = _inputs(jax.random.PRNGKey(5), (2, 11, 3), complex_=True)
    h0 = (1.0 + 0.5j) * jnp.ones((2, 3), jnp.complex64)

    def plain(a, b, h0):
        def step(h, ab):
            h = ab[0] * h + ab[1]
            return h, h

        return jnp.moveaxis(jax.lax.scan(step, h0, (a.swapaxes(0, 1), b.swapaxes(0, 1)))[1], 0, 1)

    loss_plain = lambda a, b, h0: jnp.sum(jnp.abs(plain(a, b, h0)) ** 2)
    loss_ours = lambda a, b, h0: jnp.sum(jnp.abs(lr(a, b, h0)) ** 2)
    for g, rg in zip(
        jax.grad(loss_ours, (0, 1, 2))(a, b, h0), jax.grad(loss_plain, (0, 1, 2))(a, b, h0)
    ):
        assert _rel(g, rg) < 1e-5


def test_long_sequence_fp32_and_finite():
    a, b = _inputs(jax.random.PRNGKey(6), (1, 4096, 4))
    ref = _naive(a, b, None).real
    for method in ("scan", "associative", "chunked"):
        h = lr(a, b, method=method)
        assert np.all(np.isfinite(h))
        assert _rel(h, ref) < 1e-4, method


@pytest.mark.parametrize("method", ["scan", "chunked"])
def test_bfloat16(method):
    a, b = _inputs(jax.random.PRNGKey(7), (2, 37, 4))
    h32 = lr(a, b, method="scan")
    h16 = lr(a.astype(jnp.bfloat16), b.astype(jnp.bfloat16), method=method)
    assert h16.dtype == jnp.bfloat16
    assert _rel(h16.astype(jnp.float32), h32) < 3e-2
    g = jax.grad(
        lambda b: jnp.sum(lr(a.astype(jnp.bfloat16), b, method=method).astype(jnp.float32))
    )(b.astype(jnp.bfloat16))
    g32 = jax.grad(lambda b: jnp.sum(lr(a, b, method="scan")))(b)
    assert _rel(g.astype(jnp.float32), g32) < 3e-2


def test_chunk_size_invariance():
    a, b = _inputs(jax.random.PRNGKey(8), (2, 37, 3))
    ref = lr(a, b, method="scan")
    for chunk in (1, 5, 64):
        h = lr(a, b, method="chunked", chunk_size=chunk)
        np.testing.assert_allclose(h, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "method, reverse", [("scan", True), ("associative", False), ("chunked", True)]
)
def test_segment_ids_equal_separate_sequences(method, reverse):
    """A packed batch with segment_ids equals running each segment on its own."""
    a, b = _inputs(jax.random.PRNGKey(9), (1, 20, 3))
    seg = jnp.array([[0] * 7 + [1] * 9 + [2] * 4])
    h = lr(a, b, reverse=reverse, method=method, segment_ids=seg, chunk_size=4)
    parts = []
    for lo, hi in [(0, 7), (7, 16), (16, 20)]:
        parts.append(lr(a[:, lo:hi], b[:, lo:hi], reverse=reverse, method="scan"))
    np.testing.assert_allclose(h, jnp.concatenate(parts, 1), rtol=1e-5, atol=1e-6)
    reset = jnp.zeros((1, 20), bool).at[0, [0, 7, 16]].set(True)
    h2 = lr(a, b, reverse=reverse, method=method, reset=reset, chunk_size=4)
    np.testing.assert_allclose(h2, h, rtol=1e-6)


def test_step_form_equals_full():
    a, b = _inputs(jax.random.PRNGKey(10), (2, 9, 3))
    h0 = jax.random.normal(jax.random.PRNGKey(11), (2, 3))
    full, last = lr(a, b, h0, return_final_state=True)
    state = scan.RecurrenceState(h=h0)
    outs = []
    for t in range(9):
        state, h_t = scan.linear_recurrence_step(state, a[:, t], b[:, t])
        outs.append(h_t)
    np.testing.assert_allclose(jnp.stack(outs, 1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state.h, last, rtol=1e-5, atol=1e-6)
    zero = scan.linear_recurrence_init_state(2, 3)
    np.testing.assert_array_equal(zero.h, jnp.zeros((2, 3)))


def test_causality_by_gradient():
    a, b = _inputs(jax.random.PRNGKey(12), (1, 16, 2))
    g = jax.grad(lambda b: jnp.sum(lr(a, b, method="associative")[:, 5]))(b)
    assert np.all(np.asarray(g[:, 6:]) == 0) and np.all(np.asarray(g[:, :6]) != 0)


def test_bad_inputs():
    a, b = _inputs(jax.random.PRNGKey(13), (2, 5, 3))
    with pytest.raises(ValueError, match="method"):
        scan.linear_recurrence(a, b, method="fft")
    with pytest.raises(ValueError, match="`a`"):
        scan.linear_recurrence(a[:, :, :2], b)
    with pytest.raises(ValueError, match="`h0`"):
        scan.linear_recurrence(a, b, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="`b`"):
        scan.linear_recurrence(a[0, 0], b[0, 0])
    with pytest.raises(ValueError, match="segment_ids"):
        scan.linear_recurrence(a, b, segment_ids=jnp.zeros((2, 5, 1), int))
