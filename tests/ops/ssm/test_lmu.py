"""Tests for lib.ops.ssm.lmu: Legendre memory matrices, ZOH, recurrent == convolution == FFT."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate

from lib.ops.ssm import lmu


def test_matrices_match_the_paper_for_order_3():
    a, b = lmu.legendre_memory_matrices(3)
    # A_ij = (2i+1) * (-1 if i < j else (-1)^(i-j+1)); B_i = (2i+1)(-1)^i
    np.testing.assert_array_equal(a, [[-1, -1, -1], [3, -3, -3], [-5, 5, -5]])
    np.testing.assert_array_equal(b, [1, -3, 5])


def test_zoh_matches_integrating_the_ode():
    """One ZOH step equals integrating theta dm/dt = A m + B u over dt with u held constant."""
    order, theta, dt = 6, 20.0, 1.0
    a, b = lmu.legendre_memory_matrices(order)
    a_bar, b_bar = lmu.lmu_discretize(order, theta, dt)
    m0 = np.linspace(-1, 1, order)
    u = 0.7
    sol = scipy.integrate.solve_ivp(
        lambda t, m: (a @ m + b * u) / theta, (0, dt), m0, rtol=1e-11, atol=1e-12
    )
    np.testing.assert_allclose(a_bar @ m0 + b_bar * u, sol.y[:, -1], rtol=1e-7, atol=1e-9)


def test_memory_decodes_the_delayed_window():
    """The paper's claim: u(t - r theta) ~= sum_i P_i(2r - 1) m_i(t) for a smooth input."""
    order, theta = 12, 100.0
    a_bar, b_bar = lmu.lmu_discretize(order, theta)
    t = np.arange(400)
    u = np.sin(2 * np.pi * t / 150.0)
    m = np.asarray(lmu.lmu_memory(jnp.asarray(u, jnp.float32)[None, :, None], a_bar, b_bar))
    for r in (0.0, 0.3, 0.5, 1.0):
        decoded = m[0, :, 0] @ lmu.legendre_decoder(order, r)[0]
        want = np.sin(2 * np.pi * (t - r * theta) / 150.0)
        assert np.abs(decoded[200:] - want[200:]).max() < 0.05, r


@pytest.mark.parametrize("length,with_state", [(1, False), (37, True), (37, False), (4096, True)])
def test_parallel_forms_match_ref(length, with_state):
    order, d = 4, 2
    a_bar, b_bar = lmu.lmu_discretize(order, theta=min(length, 64) + 1.0)
    u = jax.random.normal(jax.random.PRNGKey(length), (1, length, d))
    m0 = jax.random.normal(jax.random.PRNGKey(1), (1, d, order)) if with_state else None
    w = jnp.cos(jnp.arange(length * d * order, dtype=jnp.float32)).reshape(1, length, d, order)

    @jax.jit
    def forms(u, m0):
        out = {}
        for m in ("ref", "direct", "fft") if length < 4096 else ("ref", "fft"):
            loss = lambda u, m0, m=m: jnp.sum(
                w * lmu.lmu_memory(u, a_bar, b_bar, initial_state=m0, method=m)
            )
            out[m] = jax.value_and_grad(loss, argnums=(0, 1) if with_state else 0)(u, m0)
        return out

    out = forms(u, m0)
    v_ref, g_ref = out.pop("ref")
    for m, (v, g) in out.items():
        assert np.isfinite(v)
        np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-3, err_msg=m)
        for a, r in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
            np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4, err_msg=m)


def test_final_state_step_and_bfloat16():
    order, d, length = 5, 3, 37
    a_bar, b_bar = lmu.lmu_discretize(order, 16.0)
    u = jax.random.normal(jax.random.PRNGKey(0), (2, length, d))
    m_ref = lmu.lmu_memory_ref(u, a_bar, b_bar)
    run = jax.jit(lmu.lmu_memory, static_argnames=("method", "return_final_state"))
    first, s = run(u[:, :20], a_bar, b_bar, method="fft", return_final_state=True)
    second = run(u[:, 20:], a_bar, b_bar, initial_state=s, method="direct")
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), m_ref, rtol=1e-4, atol=1e-5)
    m = jnp.zeros((2, d, order))
    step = jax.jit(lmu.lmu_memory_step)
    for t in range(length):
        m, m_t = step(m, u[:, t], a_bar, b_bar)
        np.testing.assert_allclose(m_t, m_ref[:, t], rtol=1e-5, atol=1e-5)
    for method in ("ref", "fft"):
        got = run(u.astype(jnp.bfloat16), a_bar, b_bar, method=method)
        assert got.dtype == jnp.bfloat16
        np.testing.assert_allclose(got.astype(jnp.float32), m_ref, rtol=3e-2, atol=3e-2)


def test_traced_matrices_work():
    a_bar, b_bar = lmu.lmu_discretize(3, 10.0)
    u = jax.random.normal(jax.random.PRNGKey(0), (1, 20, 2))
    f = jax.jit(lambda a, b: lmu.lmu_memory(u, a, b, method="fft"))
    np.testing.assert_allclose(
        f(jnp.asarray(a_bar), jnp.asarray(b_bar)),
        lmu.lmu_memory_ref(u, a_bar, b_bar),
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.parametrize("method", ["ref", "direct", "fft"])
def test_causal_by_gradients(method):
    a_bar, b_bar = lmu.lmu_discretize(4, 8.0)
    u = jax.random.normal(jax.random.PRNGKey(0), (1, 16, 2))
    g = jax.jit(jax.grad(lambda u: lmu.lmu_memory(u, a_bar, b_bar, method=method)[:, 6].sum()))(u)
    assert np.all(np.abs(g[:, 7:]) < 1e-6) and np.any(g[:, :7] != 0)


def test_bad_inputs_name_the_argument():
    a_bar, b_bar = lmu.lmu_discretize(4, 8.0)
    u = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`u`"):
        lmu.lmu_memory(u[0], a_bar, b_bar)
    with pytest.raises(ValueError, match="`a_bar`"):
        lmu.lmu_memory(u, a_bar[:3], b_bar)
    with pytest.raises(ValueError, match="initial_state"):
        lmu.lmu_memory(u, a_bar, b_bar, initial_state=jnp.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="method"):
        lmu.lmu_memory(u, a_bar, b_bar, method="chunked")
    with pytest.raises(ValueError, match="theta"):
        lmu.lmu_discretize(4, 0.0)


def _cell_weights(key, d_in, d_h, n, feedback=True):
    ks = jax.random.split(key, 6)
    s = 0.5 if feedback else 0.0
    return {
        "e_x": jax.random.normal(ks[0], (d_in,)),
        "e_h": s * jax.random.normal(ks[1], (d_h,)),
        "e_m": s * jax.random.normal(ks[2], (n,)) / n,
        "W_x": jax.random.normal(ks[3], (d_in, d_h)) / np.sqrt(d_in),
        "W_h": jax.random.normal(ks[4], (d_h, d_h)) / np.sqrt(d_h),
        "W_m": jax.random.normal(ks[5], (n, d_h)) / np.sqrt(n),
    }


def test_nonlinear_cell_matches_numpy_and_continues_from_state():
    n, d_in, d_h, length = 5, 3, 4, 12
    a_bar, b_bar = lmu.lmu_discretize(n, 10.0)
    w = _cell_weights(jax.random.PRNGKey(0), d_in, d_h, n)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, length, d_in))
    wn = {k: np.float64(v) for k, v in w.items()}
    h, m = np.zeros((2, d_h)), np.zeros((2, n))
    want = []
    for t in range(length):
        xt = np.float64(x[:, t])
        u = xt @ wn["e_x"] + h @ wn["e_h"] + m @ wn["e_m"]
        m = m @ a_bar.T + u[:, None] * b_bar
        h = np.tanh(xt @ wn["W_x"] + h @ wn["W_h"] + m @ wn["W_m"])
        want.append(h)
    run = jax.jit(lmu.lmu_recurrent, static_argnames=("return_final_state",))
    y = run(x, w, a_bar, b_bar)
    np.testing.assert_allclose(y, np.stack(want, 1), rtol=1e-5, atol=1e-5)
    y1, s = run(x[:, :5], w, a_bar, b_bar, return_final_state=True)
    y2 = run(x[:, 5:], w, a_bar, b_bar, initial_state=s)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y, rtol=1e-5, atol=1e-6)


def test_nonlinear_cell_without_feedback_has_the_parallel_memory():
    n, d_in, d_h = 6, 3, 4
    a_bar, b_bar = lmu.lmu_discretize(n, 12.0)
    w = _cell_weights(jax.random.PRNGKey(0), d_in, d_h, n, feedback=False)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 30, d_in))
    _, fin = lmu.lmu_recurrent(x, w, a_bar, b_bar, return_final_state=True)
    u = (x @ w["e_x"])[..., None]  # [b, l, 1]
    m = lmu.lmu_memory(u, a_bar, b_bar, method="fft")
    np.testing.assert_allclose(fin.m, m[:, -1, 0], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="W_m"):
        lmu.lmu_recurrent(x, {**w, "W_m": w["W_m"][:-1]}, a_bar, b_bar)
