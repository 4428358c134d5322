"""Tests for lib.nn.blocks: RMSNorm, GatedMLP and PreNormBlock against hand-written formulas."""

import jax
import jax.numpy as jnp
import numpy as np

from lib.nn.blocks import GatedMLP, PreNormBlock, RMSNorm


def test_rmsnorm_formula_and_dtype():
    x = jax.random.normal(jax.random.key(0), (3, 5, 8)) * 4.0
    norm = RMSNorm(eps=1e-6)
    params = norm.init(jax.random.key(1), x)
    params = jax.tree.map(lambda p: p * 2.0, params)  # scale = 2
    want = 2.0 * x / np.sqrt(np.mean(np.square(x), -1, keepdims=True) + 1e-6)
    np.testing.assert_allclose(norm.apply(params, x), want, rtol=1e-5, atol=1e-6)
    assert norm.apply(params, x.astype(jnp.bfloat16)).dtype == jnp.bfloat16


def test_gated_mlp_is_swiglu():
    x = jax.random.normal(jax.random.key(0), (2, 4, 6))
    mlp = GatedMLP(dim=6, hidden_dim=10)
    p = mlp.init(jax.random.key(1), x)["params"]
    want = (jax.nn.silu(x @ p["gate"]["kernel"]) * (x @ p["up"]["kernel"])) @ p["down"]["kernel"]
    np.testing.assert_allclose(mlp.apply({"params": p}, x), want, rtol=1e-5, atol=1e-5)
    assert GatedMLP(dim=12).init(jax.random.key(1), x[..., :1].repeat(12, -1))["params"]["up"][
        "kernel"
    ].shape == (12, 32)


def test_prenorm_block_composition_and_step():
    block = PreNormBlock(dim=8, mixer="attention", mixer_kwargs={"num_heads": 2, "max_len": 8})
    x = jax.random.normal(jax.random.key(0), (2, 7, 8))
    variables = jax.jit(block.init)(jax.random.key(1), x)
    p = variables["params"]
    # norm -> mixer -> residual -> norm -> MLP -> residual, by hand from the submodules
    norm, mlp = RMSNorm(), GatedMLP(8)
    from lib.nn.attention.mixers import MultiHeadAttention

    mix = MultiHeadAttention(dim=8, num_heads=2, max_len=8)
    h = x + mix.apply({"params": p["mix"]}, norm.apply({"params": p["mixer_norm"]}, x))
    want = h + mlp.apply({"params": p["mlp"]}, norm.apply({"params": p["mlp_norm"]}, h))
    full = jax.jit(block.apply)(variables, x)
    np.testing.assert_allclose(full, want, rtol=1e-5, atol=1e-5)

    @jax.jit
    def decode(variables, x):
        state = block.apply(variables, 2, method="init_state")

        def one(state, x_t):
            return block.apply(variables, state, x_t, method="step")

        return jax.lax.scan(one, state, x.swapaxes(0, 1))[1].swapaxes(0, 1)

    np.testing.assert_allclose(decode(variables, x), full, rtol=1e-5, atol=1e-5)


def test_prenorm_block_without_mlp():
    block = PreNormBlock(dim=8, mixer="attention", mixer_kwargs={"num_heads": 2}, mlp_hidden_dim=0)
    x = jnp.ones((1, 3, 8))
    params = block.init(jax.random.key(0), x)["params"]
    assert set(params) == {"mixer_norm", "mix"}
