"""Tests for lib.ops.conv.long: FFT convolution == direct == reference == np.convolve."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.conv import long as long_conv

FORMS = ("ref", "direct", "fft")


def _np_causal_conv(u, k):
    b, l, d = u.shape
    y = np.zeros((b, l, d))
    for i in range(b):
        for c in range(d):
            y[i, :, c] = np.convolve(u[i, :, c], k[:, c])[:l]
    return y


@pytest.mark.parametrize("length,ksize", [(1, 5), (37, 37), (37, 8), (20, 50)])
def test_all_forms_match_numpy(length, ksize):
    u = jax.random.normal(jax.random.PRNGKey(length), (2, length, 3))
    k = jax.random.normal(jax.random.PRNGKey(ksize), (ksize, 3))
    want = _np_causal_conv(np.float64(u), np.float64(k))
    run = jax.jit(long_conv.fft_conv, static_argnames=("method",))
    for m in FORMS:
        np.testing.assert_allclose(run(u, k, method=m), want, rtol=1e-4, atol=1e-5, err_msg=m)


def test_long_sequence_values_and_grads():
    length, d = 4096, 2
    u = jax.random.normal(jax.random.PRNGKey(0), (1, length, d))
    k = jax.random.normal(jax.random.PRNGKey(1), (length, d)) * jnp.exp(
        -jnp.arange(length)[:, None] / 500.0
    )
    w = jnp.cos(jnp.arange(length * d, dtype=jnp.float32)).reshape(1, length, d)

    @jax.jit
    def forms(u, k):
        out = {}
        for m in ("direct", "fft"):
            loss = lambda u, k, m=m: jnp.sum(w * long_conv.fft_conv(u, k, method=m))
            out[m] = jax.value_and_grad(loss, argnums=(0, 1))(u, k)
        return out

    out = forms(u, k)
    (v_d, g_d), (v_f, g_f) = out["direct"], out["fft"]
    scale = np.abs(np.asarray(g_d[0])).max()
    np.testing.assert_allclose(v_f, v_d, rtol=1e-4)
    for a, r in zip(g_f, g_d):
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, r, atol=1e-4 * max(scale, np.abs(np.asarray(r)).max()))
    # the reference agrees too on a prefix (its scan over 4096 taps is slow to differentiate)
    y_ref = jax.jit(long_conv.fft_conv_ref)(u[:, :512], k[:512])
    np.testing.assert_allclose(
        long_conv.fft_conv(u, k, method="fft")[:, :512], y_ref, rtol=1e-4, atol=1e-4
    )


def test_gradients_of_short_forms_match_ref():
    u = jax.random.normal(jax.random.PRNGKey(0), (2, 37, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (9, 3))
    grads = jax.jit(
        lambda u, k: [
            jax.grad(
                lambda u, k, m=m: jnp.sum(jnp.sin(long_conv.fft_conv(u, k, method=m))), (0, 1)
            )(u, k)
            for m in FORMS
        ]
    )(u, k)
    for g in grads[1:]:
        for a, r in zip(g, grads[0]):
            np.testing.assert_allclose(a, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", FORMS)
def test_initial_state_continues_the_sequence(method):
    u = jax.random.normal(jax.random.PRNGKey(0), (2, 30, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (12, 3))
    run = jax.jit(long_conv.fft_conv, static_argnames=("method", "return_final_state"))
    full, fin = run(u, k, method=method, return_final_state=True)
    first, state = run(u[:, :7], k, method=method, return_final_state=True)
    second, fin2 = run(u[:, 7:], k, initial_state=state, method=method, return_final_state=True)
    np.testing.assert_allclose(jnp.concatenate([first, second], 1), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(long_conv.ring_history(fin2), long_conv.ring_history(fin), rtol=1e-6)


def test_step_matches_full_and_continues_from_full_state():
    u = jax.random.normal(jax.random.PRNGKey(0), (2, 20, 3))
    k = jax.random.normal(jax.random.PRNGKey(1), (6, 3))
    y = long_conv.fft_conv(u, k)
    s = long_conv.fft_conv_init_state(2, 6, 3)
    step = jax.jit(long_conv.fft_conv_step)
    for t in range(13):
        s, y_t = step(s, u[:, t], k)
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-5)
    _, s_full = long_conv.fft_conv(u[:, :13], k, return_final_state=True)
    s2 = s_full
    for t in range(13, 20):  # the full form's final state and the stepped ring agree
        s, y_t = step(s, u[:, t], k)
        s2, y2_t = step(s2, u[:, t], k)
        np.testing.assert_allclose(y_t, y[:, t], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(y2_t, y[:, t], rtol=1e-5, atol=1e-5)


def test_bfloat16():
    u = jax.random.normal(jax.random.PRNGKey(0), (2, 37, 4))
    k = jax.random.normal(jax.random.PRNGKey(1), (37, 4)) / 6
    want = long_conv.fft_conv(u, k, method="ref")
    for m in ("direct", "fft"):
        got = long_conv.fft_conv(u.astype(jnp.bfloat16), k.astype(jnp.bfloat16), method=m)
        assert got.dtype == jnp.bfloat16
        np.testing.assert_allclose(got.astype(jnp.float32), want, rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("method", FORMS)
def test_causal_by_gradients(method):
    u = jax.random.normal(jax.random.PRNGKey(0), (1, 16, 2))
    k = jax.random.normal(jax.random.PRNGKey(1), (16, 2))
    g = jax.jit(jax.grad(lambda u: long_conv.fft_conv(u, k, method=method)[:, 6].sum()))(u)
    assert np.all(np.abs(g[:, 7:]) < 1e-6) and np.any(g[:, :7] != 0)


def test_auto_picks_by_kernel_size():
    assert long_conv.resolve_method("auto", 4096) == "fft"
    short = long_conv.resolve_method("auto", 3)
    assert short == ("direct" if long_conv.on_accelerator() else "fft")
    assert long_conv.resolve_method("ref", 4096) == "ref"


def test_bad_inputs_name_the_argument():
    u = jnp.zeros((2, 5, 3))
    with pytest.raises(ValueError, match="`u`"):
        long_conv.fft_conv(u[0], jnp.zeros((4, 3)))
    with pytest.raises(ValueError, match="`k`"):
        long_conv.fft_conv(u, jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="initial_state"):
        long_conv.fft_conv(u, jnp.zeros((4, 3)), initial_state=long_conv.ring_init(2, 3, 3))
    with pytest.raises(ValueError, match="method"):
        long_conv.fft_conv(u, jnp.zeros((4, 3)), method="winograd")
