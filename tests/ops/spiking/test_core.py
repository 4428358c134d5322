"""Tests for lib.ops.spiking.lif: surrogate spikes and the LIF neuron."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.spiking import core as spiking
from lib.ops.spiking.core import SURROGATES, lif, lif_step, register_surrogate, spike, spike_fn

# Surrogates whose twin rises from 0 to 1, so the gradient integrates to one.
NORMALISED = [
    "sigmoid",
    "arctan",
    "rectangular",
    "gaussian",
    "piecewise_quadratic",
    "piecewise_exponential",
    "erf",
    "soft_sign",
]


def test_registry_has_the_issue_list():
    want = {
        "straight_through",
        "fast_sigmoid",
        "sigmoid",
        "arctan",
        "triangle",
        "rectangular",
        "gaussian",
        "piecewise_quadratic",
        "piecewise_exponential",
        "erf",
        "soft_sign",
        "multi_gaussian",
        "biper_sine",
    }
    assert want <= set(SURROGATES)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_forward_is_exact_heaviside(name):
    x = jnp.array([-3.0, -1e-6, 0.0, 1e-6, 2.0, -0.0])
    y = spike(x, name)
    np.testing.assert_array_equal(np.asarray(y), [0, 0, 1, 1, 1, 1])
    assert y.dtype == x.dtype
    yb = spike(x.astype(jnp.bfloat16), name)
    assert yb.dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(yb, np.float32), [0, 0, 1, 1, 1, 1])


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_gradient_is_derivative_of_smooth_twin(name):
    sg = SURROGATES[name]
    x = jax.random.normal(jax.random.PRNGKey(0), (257,)) * 1.5
    w = jax.random.normal(jax.random.PRNGKey(1), (257,))
    got = jax.grad(lambda z: jnp.sum(spike(z, name) * w))(x)
    want = jax.vmap(jax.grad(lambda z: sg.smooth(z, **sg.defaults)))(x) * w
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NORMALISED)
def test_normalised_surrogates_integrate_to_one(name):
    sg = SURROGATES[name]
    x = np.linspace(-60, 60, 480_001, dtype=np.float64)
    g = np.asarray(sg.grad(jnp.asarray(x, jnp.float32), **sg.defaults), np.float64)
    twin = lambda z: float(sg.smooth(jnp.float32(z), **sg.defaults))
    np.testing.assert_allclose(np.trapezoid(g, x), twin(60.0) - twin(-60.0), atol=5e-4)
    np.testing.assert_allclose([twin(-1e5), twin(1e5)], [0.0, 1.0], atol=1e-4)


def test_multi_gaussian_integrates_to_one_minus_height():
    # Yin et al. 2021's form: two negative side lobes of mass `height` each, centre 1 + height.
    sg = SURROGATES["multi_gaussian"]
    x = np.linspace(-30, 30, 240_001)
    g = np.asarray(sg.grad(jnp.asarray(x, jnp.float32), **sg.defaults), np.float64)
    np.testing.assert_allclose(np.trapezoid(g, x), 1.0 - sg.defaults["height"], atol=1e-4)
    assert g.min() < 0  # the side lobes


def test_params_change_sharpness_and_are_checked():
    x = jnp.array([0.1])
    g5 = jax.grad(lambda z: spike(z, "fast_sigmoid", alpha=5.0).sum())(x)
    np.testing.assert_allclose(g5, 1.0 / (1.0 + 0.5) ** 2, rtol=1e-6)
    with pytest.raises(TypeError, match="alpha"):
        spike(x, "fast_sigmoid", slope=3.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        spike(x, "nope")
    with pytest.raises(TypeError, match="floating"):
        spike(jnp.array([1, 2]), "sigmoid")


def test_register_custom_surrogate():
    name = "test_cubic_bump"
    if name not in SURROGATES:
        register_surrogate(
            name, grad=lambda x, w: jnp.maximum(0.0, 1 - (x / w) ** 2) * 0.75 / w, w=2.0
        )
    g = jax.grad(lambda z: spike(z, name).sum())(jnp.array([1.0, 3.0]))
    np.testing.assert_allclose(g, [0.75 / 2 * 0.75, 0.0], rtol=1e-6)
    with pytest.raises(ValueError, match="already"):
        register_surrogate(name, grad=lambda x: x)


# ------------------------------------------------------------------ LIF


def _lif_numpy(current, beta, threshold, reset, v0=None):
    """Plain NumPy loop: the definition, independent of JAX."""
    current = np.asarray(current, np.float64)
    v = np.zeros(current.shape[:1] + current.shape[2:]) if v0 is None else np.array(v0, np.float64)
    out = np.zeros_like(current)
    for t in range(current.shape[1]):
        v = beta * v + current[:, t]
        s = (v >= threshold).astype(np.float64)
        if reset == "subtract":
            v = v - threshold * s
        elif reset == "zero":
            v = v * (1 - s)
        out[:, t] = s
    return out, v


@pytest.mark.parametrize("reset", spiking.RESETS)
@pytest.mark.parametrize("length", [1, 33])
def test_lif_matches_numpy(reset, length):
    k1, k2 = jax.random.split(jax.random.PRNGKey(length))
    current = jax.random.normal(k1, (3, length, 5)) * 0.8 + 0.3
    v0 = jax.random.uniform(k2, (3, 5))
    beta = jnp.linspace(0.5, 1.0, 5)
    s, v = lif(current, beta=beta, threshold=0.9, reset=reset, v0=v0, return_final_state=True)
    s_ref, v_ref = _lif_numpy(current, np.asarray(beta), 0.9, reset, v0)
    np.testing.assert_array_equal(np.asarray(s), s_ref)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5, atol=1e-5)


def test_lif_long_sequence_no_nan():
    current = jax.random.uniform(jax.random.PRNGKey(1), (1, 4096, 2)) * 0.3
    s, v = jax.jit(lambda c: lif(c, beta=0.95, return_final_state=True))(current)
    s_ref, v_ref = _lif_numpy(current, 0.95, 1.0, "subtract")
    assert np.isfinite(np.asarray(v)).all()
    # float32 vs float64 can flip a spike that lands within rounding of the threshold.
    assert np.mean(np.asarray(s) != s_ref) < 1e-3
    assert s.sum() > 100


def _lif_unrolled_st(current, beta, threshold, reset, detach_reset, smooth):
    """Python-unrolled LIF whose spike is H(x) forward, d smooth/dx backward (straight-through)."""
    v = jnp.zeros(current.shape[:1] + current.shape[2:])
    out = []
    for t in range(current.shape[1]):
        v = beta * v + current[:, t]
        x = v - threshold
        s = jax.lax.stop_gradient((x >= 0).astype(x.dtype) - smooth(x)) + smooth(x)
        r = jax.lax.stop_gradient(s) if detach_reset else s
        v = v - threshold * r if reset == "subtract" else (v * (1 - r) if reset == "zero" else v)
        out.append(s)
    return jnp.stack(out, 1)


@pytest.mark.parametrize(
    "reset, detach_reset",
    [("subtract", False), ("subtract", True), ("zero", False), ("none", False)],
)
def test_lif_gradient_matches_unrolled(reset, detach_reset):
    sg = SURROGATES["sigmoid"]
    smooth = lambda x: sg.smooth(x, alpha=4.0)
    current = jax.random.normal(jax.random.PRNGKey(2), (2, 9, 4)) * 0.7 + 0.4
    w = jax.random.normal(jax.random.PRNGKey(3), (2, 9, 4))

    def loss(c, beta, fn):
        return jnp.sum(fn(c, beta) * w)

    ours = lambda c, b: lif(
        c, beta=b, threshold=1.0, reset=reset, surrogate="sigmoid", detach_reset=detach_reset
    )
    ref = lambda c, b: _lif_unrolled_st(c, b, 1.0, reset, detach_reset, smooth)
    beta = jnp.full((4,), 0.8)
    g = jax.jit(jax.grad(lambda c, b: loss(c, b, ours), argnums=(0, 1)))(current, beta)
    g_ref = jax.jit(jax.grad(lambda c, b: loss(c, b, ref), argnums=(0, 1)))(current, beta)
    np.testing.assert_allclose(g[0], g_ref[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(g[1], g_ref[1], rtol=1e-4, atol=1e-5)


def test_lif_step_matches_full_and_callable_surrogate():
    current = jax.random.normal(jax.random.PRNGKey(4), (2, 11, 3, 2)) + 0.5
    fire = spike_fn("arctan", alpha=3.0)
    full, v_full = lif(current, beta=0.7, reset="zero", surrogate=fire, return_final_state=True)
    v = spiking.lif_init_state(2, (3, 2))
    steps = []
    for t in range(11):
        v, s = lif_step(v, current[:, t], beta=0.7, reset="zero", surrogate=fire)
        steps.append(s)
    np.testing.assert_array_equal(np.stack(steps, 1), full)
    np.testing.assert_allclose(v, v_full, rtol=1e-6)


def test_lif_bfloat16_close_to_float32():
    current = jax.random.normal(jax.random.PRNGKey(5), (4, 64, 16)) * 0.5 + 0.3
    s32 = lif(current, beta=0.9)
    s16 = lif(current.astype(jnp.bfloat16), beta=0.9)
    assert s16.dtype == jnp.bfloat16
    assert np.mean(np.asarray(s16, np.float32) != np.asarray(s32)) < 0.03
    g = jax.grad(lambda c: lif(c, beta=0.9).astype(jnp.float32).sum())(current.astype(jnp.bfloat16))
    assert g.dtype == jnp.bfloat16 and np.isfinite(np.asarray(g, np.float32)).all()


def test_lif_bad_inputs():
    c = jnp.ones((2, 5, 3))
    with pytest.raises(ValueError, match="reset"):
        lif(c, beta=0.9, reset="soft")
    with pytest.raises(ValueError, match="rank"):
        lif(jnp.ones((5,)), beta=0.9)
    with pytest.raises(ValueError, match="v0"):
        lif(c, beta=0.9, v0=jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match="beta"):
        lif(c, beta=jnp.ones((4,)))
    with pytest.raises(ValueError, match="method"):
        lif(c, beta=0.9, method="cuda")
    with pytest.raises(TypeError, match="floating"):
        lif(jnp.ones((2, 5, 3), jnp.int32), beta=0.9)


def test_lif_pallas_dispatch_matches_scan(monkeypatch):
    """method="pallas" hands the named surrogate's derivative to lib.kernels.lif (run here in
    interpret mode by pretending to be on an accelerator): values and gradients match."""
    pytest.importorskip("lib.kernels.lif")
    monkeypatch.setattr(spiking, "on_accelerator", lambda: True)
    current = jax.random.normal(jax.random.PRNGKey(6), (2, 6, 4)) * 0.8 + 0.4
    beta = jnp.array([0.5, 0.7, 0.9, 1.0])
    w = jax.random.normal(jax.random.PRNGKey(7), (2, 6, 4))
    kw = dict(threshold=0.8, reset="subtract", surrogate="arctan")  # kernel tests cover "zero"
    f_k = lambda c, b: jnp.sum(lif(c, beta=b, method="pallas", **kw) * w)
    f_s = lambda c, b: jnp.sum(lif(c, beta=b, method="scan", **kw) * w)
    np.testing.assert_allclose(f_k(current, beta), f_s(current, beta), rtol=1e-6)
    g_k = jax.grad(f_k, argnums=(0, 1))(current, beta)
    g_s = jax.grad(f_s, argnums=(0, 1))(current, beta)
    for a, b in zip(g_k, g_s):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
