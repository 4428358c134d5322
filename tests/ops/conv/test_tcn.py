"""Tests for lib.ops.conv.tcn: dilated causal conv vs a NumPy loop, forms, stack, step, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.conv import tcn


def _np_dilated(x, w, dil):
    b, l, _ = x.shape
    depthwise = w.ndim == 2
    y = np.zeros((b, l, w.shape[-1]))
    for t in range(l):
        for j in range(w.shape[0]):
            s = t - j * dil
            if s >= 0:
                y[:, t] += x[:, s] * w[j] if depthwise else x[:, s] @ w[j]
    return y


@pytest.mark.parametrize(
    "depthwise,length,k,dil",
    [(False, 1, 3, 1), (True, 37, 3, 4), (False, 37, 2, 16), (True, 20, 5, 8)],
)
def test_dilated_conv_matches_numpy(depthwise, length, k, dil):
    x = jax.random.normal(jax.random.PRNGKey(length + k), (2, length, 3))
    shape = (k, 3) if depthwise else (k, 3, 4)
    w = jax.random.normal(jax.random.PRNGKey(dil), shape)
    want = _np_dilated(np.float64(x), np.float64(w), dil)
    run = jax.jit(tcn.dilated_causal_conv, static_argnames=("dilation", "method"))
    for m in ("ref", "conv"):
        np.testing.assert_allclose(run(x, w, dilation=dil, method=m), want, rtol=1e-5, atol=1e-5)


def _stack(key, n, k, d):
    ks = jax.random.split(key, 2 * n)
    kernels = [jax.random.normal(ks[i], (k, d, d)) / np.sqrt(k * d) for i in range(n)]
    biases = [0.1 * jax.random.normal(ks[n + i], (d,)) for i in range(n)]
    return kernels, biases


@pytest.mark.parametrize("length", [1, 37, 4096])
def test_tcn_conv_matches_ref_values_and_grads(length):
    kernels, biases = _stack(jax.random.PRNGKey(0), 4, 3, 2)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, length, 2))
    w = jnp.cos(jnp.arange(length * 2, dtype=jnp.float32)).reshape(1, length, 2)

    @jax.jit
    def forms(x, kernels, biases):
        out = []
        for m in ("ref", "conv"):
            loss = lambda *a, m=m: jnp.sum(w * tcn.tcn(*a, activation=jax.nn.gelu, method=m))
            out.append(jax.value_and_grad(loss, argnums=(0, 1, 2))(x, kernels, biases))
        return out

    (v_ref, g_ref), (v, g) = forms(x, kernels, biases)
    assert np.isfinite(v)
    np.testing.assert_allclose(v, v_ref, rtol=1e-4, atol=1e-4)
    for a, r in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-4)


def test_tcn_stack_equations():
    kernels, biases = _stack(jax.random.PRNGKey(0), 3, 2, 3)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 17, 3))
    want = np.float64(x)
    for i, (k, b) in enumerate(zip(kernels, biases)):
        want = want + np.maximum(_np_dilated(want, np.float64(k), 2**i) + np.float64(b), 0)
    np.testing.assert_allclose(jax.jit(tcn.tcn)(x, kernels, biases), want, rtol=1e-5, atol=1e-5)


def test_initial_state_step_and_bfloat16():
    kernels, biases = _stack(jax.random.PRNGKey(0), 3, 3, 2)
    dils = (1, 2, 4)
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 25, 2))
    run = jax.jit(tcn.tcn, static_argnames=("method", "return_final_state"))
    full = run(x, kernels, biases)
    y1, s = run(x[:, :10], kernels, biases, return_final_state=True)
    y2 = run(x[:, 10:], kernels, biases, initial_state=s, method="ref")
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), full, rtol=1e-5, atol=1e-5)
    state = tcn.tcn_init_state(2, 3, 2, dils)
    step = jax.jit(tcn.tcn_step)
    for t in range(25):
        state, y_t = step(state, x[:, t], kernels, biases)
        np.testing.assert_allclose(y_t, full[:, t], rtol=1e-5, atol=1e-5)
    bf = lambda a: a.astype(jnp.bfloat16)
    got = run(bf(x), [bf(k) for k in kernels], [bf(b) for b in biases])
    assert got.dtype == jnp.bfloat16
    np.testing.assert_allclose(got.astype(jnp.float32), full, rtol=3e-2, atol=5e-2)


@pytest.mark.parametrize("method", ["ref", "conv"])
def test_causal_by_gradients(method):
    kernels, biases = _stack(jax.random.PRNGKey(0), 3, 3, 2)
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 30, 2))
    g = jax.jit(jax.grad(lambda x: tcn.tcn(x, kernels, biases, method=method)[:, 12].sum()))(x)
    assert np.all(g[:, 13:] == 0) and np.any(g[:, :13] != 0)
    assert tcn.receptive_field(3, 4) == 9


def test_bad_inputs_name_the_argument():
    x = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`x`"):
        tcn.dilated_causal_conv(x[0], jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match="`w`"):
        tcn.dilated_causal_conv(x, jnp.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match="`dilation`"):
        tcn.dilated_causal_conv(x, jnp.zeros((2, 3)), dilation=0)
    with pytest.raises(ValueError, match="initial_state"):
        tcn.dilated_causal_conv(x, jnp.zeros((2, 3)), initial_state=tcn.ring_init(2, 5, 3))
    with pytest.raises(ValueError, match="method"):
        tcn.dilated_causal_conv(x, jnp.zeros((2, 3)), method="fft")
    with pytest.raises(ValueError, match="`dilations`"):
        tcn.tcn(x, [jnp.zeros((2, 3, 3))], dilations=(1, 2))
    with pytest.raises(ValueError, match="`biases`"):
        tcn.tcn(x, [jnp.zeros((2, 3, 3))], [jnp.zeros(3)] * 2)


def test_auto_picks_by_length_on_cpu():
    # thresholds from the idle-machine timings in lib/ops/conv/tcn.py's docstring
    r = tcn.resolve_method
    assert r("auto", depthwise=False, length=256) == "ref"
    assert r("auto", depthwise=False, length=2048) == "conv"
    assert r("auto", depthwise=True, length=2048) == "ref"
    assert r("auto", depthwise=True, length=16384) == "ref"
    assert r("conv", depthwise=True, length=16) == "conv"
    with pytest.raises(ValueError, match="method"):
        r("fast", depthwise=False, length=16)
