"""Tests for the GLA, RetNet and RWKV-6 mixers: step == full, state carry, causality, registry."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.linear_attention.mixers import GLA, RetNet, RWKV6TimeMix
from lib.nn.registry import get_mixer
from lib.nn.sequence_model import SequenceModel

MIXERS = [
    (GLA, {"num_heads": 2, "chunk_size": 4, "method": "chunked"}),
    (RetNet, {"num_heads": 2, "chunk_size": 4, "method": "chunked"}),
    (RetNet, {"num_heads": 2, "method": "parallel"}),
    (
        RWKV6TimeMix,
        {"num_heads": 2, "mix_rank": 4, "decay_rank": 4, "chunk_size": 4, "method": "chunked"},
    ),
]


def _init(module, x):
    """Init, then perturb every parameter so zero-initialised LoRA paths are exercised too."""
    variables = jax.jit(module.init)(jax.random.key(1), x)
    leaves, tree = jax.tree.flatten(variables)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    noisy = [p + 0.1 * jax.random.normal(key, p.shape) for p, key in zip(leaves, keys)]
    return jax.tree.unflatten(tree, noisy)


@pytest.mark.parametrize("cls,kwargs", MIXERS)
def test_step_and_state_carry_equal_full(cls, kwargs):
    module = cls(dim=16, **kwargs)
    x = jax.random.normal(jax.random.key(0), (2, 11, 16))
    variables = _init(module, x)

    @jax.jit
    def run(variables, x):
        full = module.apply(variables, x)
        state = module.apply(variables, 2, method="init_state")
        one = lambda s, x_t: module.apply(variables, s, x_t, method="step")
        _, steps = jax.lax.scan(one, state, x.swapaxes(0, 1))
        head, state = module.apply(variables, x[:, :5], return_state=True)
        tail, _ = module.apply(variables, x[:, 5:], state=state, return_state=True)
        return full, steps.swapaxes(0, 1), jnp.concatenate([head, tail], 1)

    full, steps, pieces = run(variables, x)
    assert np.isfinite(np.asarray(full)).all()
    np.testing.assert_allclose(steps, full, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(pieces, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls,kwargs", MIXERS[:2] + MIXERS[3:])
def test_causality_by_gradients(cls, kwargs):
    module = cls(dim=8, **kwargs)
    x = jax.random.normal(jax.random.key(0), (1, 10, 8))
    variables = _init(module, x)
    t = 6
    g = jax.jit(jax.grad(lambda x: module.apply(variables, x)[:, t].sum()))(x)
    assert np.all(np.asarray(g[:, t + 1 :]) == 0)
    assert np.any(np.asarray(g[:, t]) != 0)


@pytest.mark.slow
def test_registry_and_sequence_model_decoding():
    assert get_mixer("gla") is GLA and get_mixer("retnet") is RetNet
    assert get_mixer("rwkv6") is RWKV6TimeMix
    model = SequenceModel(dim=16, depth=2, vocab_size=7, mixer="rwkv6",
                          mixer_kwargs={"num_heads": 2, "mix_rank": 4, "decay_rank": 4},
                          scan_layers=True)  # fmt: skip
    tokens = jax.random.randint(jax.random.key(0), (2, 6), 0, 7)
    variables = _init(model, tokens)

    @jax.jit
    def run(variables):
        state = model.apply(variables, 2, method="init_state")
        one = lambda s, t: model.apply(variables, s, t, method="step")
        return model.apply(variables, tokens), jax.lax.scan(one, state, tokens.T)[1]

    full, steps = run(variables)
    np.testing.assert_allclose(steps.swapaxes(0, 1), full, rtol=1e-4, atol=1e-5)


def test_bad_config():
    with pytest.raises(ValueError, match="num_heads"):
        GLA(dim=10, num_heads=3).init(jax.random.key(0), jnp.ones((1, 2, 10)))
