"""Mixer-protocol tests for the SSM modules: full == streamed steps, state chaining, causality."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.registry import get_mixer

DIM = 8
# name -> small constructor kwargs (every SSM mixer this package registers)
CASES = {
    "mamba": dict(state_dim=4, expand=2),
    "mamba2": dict(state_dim=4, expand=2, head_dim=4, chunk_size=4),
    "s4d": dict(state_dim=4),
    "s5": dict(state_dim=4),
    "lru": dict(state_dim=4, r_min=0.5, r_max=0.99),
    "rglru": {},
    "griffin": dict(width=12),
}


METHODS = {
    "mamba": ("scan", "chunked"),
    "mamba2": ("scan", "chunked"),
    "s4d": ("scan", "chunked", "fft"),
    "s5": ("scan", "associative"),
    "lru": ("scan", "associative"),
    "rglru": ("scan", "chunked"),
    "griffin": ("scan", "associative"),
}


def _model(name, **kw):
    return get_mixer(name)(dim=DIM, **{**CASES[name], **kw})


def _x(length, b=2, seed=0):
    return jax.random.normal(jax.random.PRNGKey(seed), (b, length, DIM))


@pytest.mark.parametrize("name", sorted(CASES))
def test_step_by_step_equals_full_sequence(name):
    model = _model(name)
    x = _x(7)
    params = model.init(jax.random.PRNGKey(1), x)
    y_full, state_full = model.apply(params, x, return_state=True)
    state = model.apply(params, 2, method="init_state")

    def body(state, x_t):
        state, y_t = model.apply(params, state, x_t, method="step")
        return state, y_t

    state, ys = jax.lax.scan(body, state, jnp.moveaxis(x, 1, 0))
    np.testing.assert_allclose(jnp.moveaxis(ys, 0, 1), y_full, rtol=1e-4, atol=1e-5)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(state_full)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_state_chaining_and_methods_agree(name):
    """Two calls carrying the state equal one call; every method gives the same output."""
    model = _model(name)
    x = _x(11, seed=2)
    params = model.init(jax.random.PRNGKey(3), x)
    y = model.apply(params, x)
    y1, s1 = model.apply(params, x[:, :4], return_state=True)
    y2, _ = model.apply(params, x[:, 4:], state=s1, return_state=True)
    np.testing.assert_allclose(jnp.concatenate([y1, y2], 1), y, rtol=1e-4, atol=1e-5)
    for method in METHODS[name]:
        y_m = _model(name, method=method).apply(params, x)
        np.testing.assert_allclose(y_m, y, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(CASES))
def test_causality_by_gradient(name):
    model = _model(name)
    x = _x(10, b=1, seed=4)
    params = model.init(jax.random.PRNGKey(5), x)
    g = jax.grad(lambda x: jnp.sum(model.apply(params, x)[:, 4]))(x)
    assert np.all(np.asarray(g[:, 5:]) == 0)
    assert np.any(np.asarray(g[:, :4]) != 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bfloat16_finite(name):
    model = _model(name)
    x = _x(9, seed=6)
    params = model.init(jax.random.PRNGKey(7), x)
    y32 = model.apply(params, x)
    y16 = model.apply(params, x.astype(jnp.bfloat16))
    assert np.all(np.isfinite(np.asarray(y16, np.float32)))
    scale = float(jnp.max(jnp.abs(y32)))
    np.testing.assert_allclose(np.asarray(y16, np.float32), y32, atol=0.1 * scale)
