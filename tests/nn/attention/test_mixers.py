"""Tests for the attention mixers: step == full, causality, positions, registry, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.attention.mixers import LocalAttention, MultiHeadAttention
from lib.nn.registry import get_mixer


def _decode(module, variables, x):
    state = module.apply(variables, x.shape[0], method="init_state")
    one = lambda s, x_t: module.apply(variables, s, x_t, method="step")
    return jax.lax.scan(one, state, x.swapaxes(0, 1))[1].swapaxes(0, 1)


CONFIGS = [
    (MultiHeadAttention, {"positions": "rope"}),
    (MultiHeadAttention, {"positions": "learned", "num_kv_heads": 1}),
    (MultiHeadAttention, {"positions": "none", "chunk_size": 3}),
    (LocalAttention, {"window": 4}),
]


@pytest.mark.parametrize("cls,kwargs", CONFIGS)
def test_step_and_prefill_equal_full(cls, kwargs):
    module = cls(dim=16, num_heads=4, max_len=12, **kwargs)
    x = jax.random.normal(jax.random.key(0), (2, 11, 16))
    variables = jax.jit(module.init)(jax.random.key(1), x)

    @jax.jit
    def run(variables, x):
        full = module.apply(variables, x)
        steps = _decode(module, variables, x)
        head, state = module.apply(variables, x[:, :6], return_state=True)
        tail, _ = module.apply(variables, x[:, 6:], state=state, return_state=True)
        return full, steps, jnp.concatenate([head, tail], 1)

    full, steps, pieces = run(variables, x)
    np.testing.assert_allclose(steps, full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pieces, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cls,kwargs", CONFIGS)
def test_causality_by_gradients(cls, kwargs):
    module = cls(dim=8, num_heads=2, max_len=16, **kwargs)
    x = jax.random.normal(jax.random.key(0), (1, 10, 8))
    variables = jax.jit(module.init)(jax.random.key(1), x)
    t = 5
    g = jax.jit(jax.grad(lambda x: module.apply(variables, x)[:, t].sum()))(x)
    assert np.all(np.asarray(g[:, t + 1 :]) == 0)
    assert np.any(np.asarray(g[:, t]) != 0)


def test_registry_names():
    assert get_mixer("attention") is MultiHeadAttention
    assert get_mixer("local_attention") is LocalAttention
    assert LocalAttention(dim=8).window == 128


def test_bad_config_errors():
    x = jnp.ones((1, 4, 8))
    with pytest.raises(ValueError, match="positions"):
        MultiHeadAttention(dim=8, positions="alibi").init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="window"):
        MultiHeadAttention(dim=8, window=2, chunk_size=2).init(jax.random.key(0), x)
