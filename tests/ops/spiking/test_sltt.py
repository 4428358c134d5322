"""Tests for lib.ops.spiking.sltt: BPTT, truncated BPTT, SLTT and SLTT-K on LIF networks."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.spiking import sltt
from lib.ops.spiking.core import SURROGATES, lif_step

ALPHA = 4.0  # sigmoid surrogate sharpness used throughout


def two_layer_step(params, state, xc_t, beta=0.8):
    """Two LIF layers; loss_t = sum(c_t * s2_t) + a small membrane penalty."""
    v1, v2 = state
    fire = _fire
    v1, s1 = lif_step(v1, xc_t["x"] @ params["w1"], beta=beta, surrogate=fire)
    v2, s2 = lif_step(v2, s1 @ params["w2"], beta=beta, surrogate=fire)
    loss = jnp.sum(xc_t["c"] * s2) + 0.01 * jnp.sum(v2**2)
    return loss, (v1, v2)


def _fire(x):
    from lib.ops.spiking.core import spike

    return spike(x, "sigmoid", alpha=ALPHA)


def _problem(length, batch=4, n_in=6, hidden=8, n_out=3, seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 4)
    params = {
        "w1": jax.random.normal(k[0], (n_in, hidden)) * 0.8,
        "w2": jax.random.normal(k[1], (hidden, n_out)) * 0.8,
    }
    xs = {
        "x": jax.random.uniform(k[2], (batch, length, n_in)),
        "c": jax.random.normal(k[3], (batch, length, n_out)),
    }
    state0 = (jnp.zeros((batch, hidden)), jnp.zeros((batch, n_out)))
    return params, state0, xs


def _assert_tree_close(a, b, **kw):
    """Same tree structure and shapes, leaves close (chex; a bare zip of leaves would pass
    trees of different sizes)."""
    chex.assert_trees_all_close(a, b, **kw)


def test_sltt_matches_analytic_instantaneous_gradient():
    """One LIF layer, loss_t = sum(c_t s_t): SLTT's dL/dW = sum_t x_t^T (c_t * sg'(u_t - 1))."""
    beta, length = 0.7, 12
    params, _, xs = _problem(length)
    w = params["w1"]

    def step(p, v, xc_t):
        v, s = lif_step(v, xc_t["x"] @ p, beta=beta, surrogate=_fire)
        return jnp.sum(xc_t["c"][:, :1] * s), v

    loss, g = jax.jit(lambda p: sltt.sltt_value_and_grad(step, p, jnp.zeros((4, 8)), xs))(w)
    x, c = np.asarray(xs["x"], np.float64), np.asarray(xs["c"][..., :1], np.float64)
    sg = lambda z: ALPHA * np.exp(-ALPHA * z) / (1 + np.exp(-ALPHA * z)) ** 2
    v, want, total = np.zeros((4, 8)), np.zeros_like(np.asarray(w, np.float64)), 0.0
    for t in range(length):
        u = beta * v + x[:, t] @ np.asarray(w, np.float64)
        s = (u >= 1.0).astype(np.float64)
        want += x[:, t].T @ (c[:, t] * sg(u - 1.0))
        total += np.sum(c[:, t] * s)
        v = u - s
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(loss, total, rtol=1e-5)


def test_sltt_equals_bptt_without_temporal_term():
    """beta = 0 and a detached reset leave no temporal path: SLTT == BPTT exactly; with
    beta > 0 they differ, and BPTT with the state detached by hand equals SLTT."""
    params, state0, xs = _problem(10)
    no_time = functools.partial(two_layer_step, beta=0.0)

    def detached(p, s, xc_t):
        return two_layer_step(p, jax.lax.stop_gradient(s), xc_t)

    @jax.jit
    def all_grads(params, state0, xs):
        return (
            sltt.bptt_value_and_grad(no_time, params, state0, xs),
            sltt.sltt_value_and_grad(no_time, params, state0, xs),
            sltt.bptt_value_and_grad(two_layer_step, params, state0, xs)[1],
            sltt.sltt_value_and_grad(two_layer_step, params, state0, xs)[1],
            sltt.bptt_value_and_grad(detached, params, state0, xs)[1],
        )

    (l_b0, g_b0), (l_s0, g_s0), g_b, g_s, g_d = all_grads(params, state0, xs)
    np.testing.assert_allclose(l_b0, l_s0, rtol=1e-6)
    _assert_tree_close(g_b0, g_s0, rtol=1e-5, atol=1e-6)
    assert not np.allclose(g_b["w1"], g_s["w1"], rtol=1e-3)
    _assert_tree_close(g_d, g_s, rtol=1e-5, atol=1e-6)


def test_tbptt_limits():
    params, state0, xs = _problem(12)

    def windows_by_hand(params, state0, xs):
        want, state = jax.tree.map(jnp.zeros_like, params), state0
        for w in range(3):
            window = jax.tree.map(lambda a, w=w: a[:, 4 * w : 4 * w + 4], xs)
            _, g = sltt.bptt_value_and_grad(two_layer_step, params, state, window)
            want = jax.tree.map(jnp.add, want, g)
            _, state = sltt.unroll_loss(two_layer_step, params, state, window)
        return want

    @jax.jit
    def all_grads(params, state0, xs):
        tb = functools.partial(sltt.tbptt_value_and_grad, two_layer_step, params, state0, xs)
        return (
            sltt.bptt_value_and_grad(two_layer_step, params, state0, xs),
            tb(truncation=12),
            tb(truncation=1)[1],
            sltt.sltt_value_and_grad(two_layer_step, params, state0, xs)[1],
            tb(truncation=4)[1],
            windows_by_hand(params, state0, xs),
        )

    (l_b, g_b), (l_t, g_t), g_1, g_s, g_4, want = all_grads(params, state0, xs)
    np.testing.assert_allclose(l_t, l_b, rtol=1e-6)
    _assert_tree_close(g_t, g_b, rtol=1e-5, atol=1e-6)  # one window = BPTT
    _assert_tree_close(g_1, g_s, rtol=1e-5, atol=1e-6)  # windows of one step = SLTT
    _assert_tree_close(g_4, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="truncation"):
        sltt.tbptt_value_and_grad(two_layer_step, params, state0, xs, truncation=5)


def test_sltt_k_uses_exactly_the_chosen_steps():
    params, state0, xs = _problem(10)
    rng = jax.random.PRNGKey(3)
    mask = sltt.sltt_k_mask(rng, 10, 3)
    assert int(mask.sum()) == 3

    # Reference: SLTT whose loss is zeroed (with its gradient) outside the chosen steps.
    def masked(p, s, xm_t):
        loss_t, s_new = two_layer_step(p, s, xm_t)
        return loss_t * xm_t["m"][0], s_new

    @jax.jit
    def all_grads(params, state0, xs):
        xs_m = dict(xs, m=jnp.broadcast_to(mask.astype(jnp.float32), (4, 10)))
        return (
            sltt.sltt_value_and_grad(two_layer_step, params, state0, xs, k=3, rng=rng),
            sltt.sltt_value_and_grad(two_layer_step, params, state0, xs),
            sltt.sltt_value_and_grad(masked, params, state0, xs_m)[1],
            sltt.sltt_value_and_grad(two_layer_step, params, state0, xs, k=10, rng=rng)[1],
        )

    (loss_k, g_k), (loss, g_s), want, g_all = all_grads(params, state0, xs)
    np.testing.assert_allclose(loss_k, loss, rtol=1e-6)  # the loss still covers every step
    _assert_tree_close(g_k, want, rtol=1e-5, atol=1e-6)
    _assert_tree_close(g_all, g_s, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="rng"):
        sltt.sltt_value_and_grad(two_layer_step, params, state0, xs, k=2)


def test_compiled_memory_sltt_flat_bptt_grows():
    """XLA's compiled memory analysis: BPTT's scratch memory grows with T, SLTT's does not."""
    mem = {}
    for length in (16, 128):
        params, state0, xs = _problem(length, batch=4, n_in=16, hidden=32, n_out=4)
        for name, fn in (("bptt", sltt.bptt_value_and_grad), ("sltt", sltt.sltt_value_and_grad)):
            f = lambda p, s, x, fn=fn: fn(two_layer_step, p, s, x)
            mem[name, length] = sltt.temp_bytes(f, params, state0, xs)
    if mem["bptt", 16] is None:
        pytest.skip("this backend reports no memory analysis")
    assert mem["bptt", 128] > 4 * mem["bptt", 16], mem
    assert mem["sltt", 128] <= 1.05 * mem["sltt", 16] + 1024, mem
    assert mem["sltt", 128] < mem["bptt", 128] / 4, mem


def test_surrogate_used_is_sigmoid():
    # Guard for the analytic test above: the sigmoid surrogate's default matches ALPHA's form.
    sg = SURROGATES["sigmoid"]
    z = jnp.linspace(-2, 2, 9)
    want = ALPHA * jnp.exp(-ALPHA * z) / (1 + jnp.exp(-ALPHA * z)) ** 2
    np.testing.assert_allclose(sg.grad(z, alpha=ALPHA), want, rtol=1e-5)
