"""Accounting: MACs from the jaxpr, parameter bits, BOPs, memory and activation sparsity."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

from lib.ops.accounting import account, activation_sparsity, count_macs, param_bits
from lib.ops.quant.binary import sign_ste


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Dense(32)(x))
        return nn.Dense(10)(h)


def test_count_macs_dense_conv_scan_and_custom_vjp():
    a, b = jnp.ones((4, 7, 16)), jnp.ones((16, 5))
    assert count_macs(lambda p, q: p @ q, a, b) == 4 * 7 * 16 * 5
    x = jnp.ones((2, 9, 9, 3))  # NHWC
    k = jnp.ones((3, 3, 3, 8))  # HWIO
    conv = lambda p, q: jax.lax.conv_general_dilated(
        p, q, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    assert count_macs(conv, x, k) == 2 * 9 * 9 * 8 * (3 * 3 * 3)
    w = jnp.ones((16, 16))

    def rnn(h0, xs):
        return jax.lax.scan(lambda h, xt: (jnp.tanh(h @ w + xt), None), h0, xs)[0]

    assert count_macs(rnn, jnp.ones((3, 16)), jnp.ones((11, 3, 16))) == 11 * 3 * 16 * 16
    assert count_macs(lambda p, q: jax.jit(lambda s, t: sign_ste(s) @ t)(p, q), a, b) == (
        4 * 7 * 16 * 5
    )
    cond = lambda p: jax.lax.cond(p.sum() > 0, lambda t: t @ b, lambda t: t[..., :5] * 2.0, p)
    assert count_macs(cond, a) == 4 * 7 * 16 * 5


def test_account_mlp():
    model = Net()
    x = jax.random.normal(jax.random.PRNGKey(0), (8, 20))
    params = model.init(jax.random.PRNGKey(1), x)
    _, state = model.apply(params, x, capture_intermediates=True)
    res = account(
        model.apply,
        params,
        x,
        weight_bits={"*kernel": 4},
        act_bits=8,
        activations=state["intermediates"],
    )
    n_kernel, n_bias = 20 * 32 + 32 * 10, 32 + 10
    assert res["params"] == n_kernel + n_bias
    assert res["param_bits"] == n_kernel * 4 + n_bias * 32
    assert res["param_bytes"] == res["param_bits"] / 8
    assert res["macs"] == 8 * n_kernel
    mean_w = res["param_bits"] / res["params"]
    assert res["bops"] == pytest.approx(8 * n_kernel * mean_w * 8)
    assert res["activation_bytes"] >= 0
    assert 0 <= res["activation_sparsity"] < 1
    assert param_bits(params) == 32 * (n_kernel + n_bias)
    assert param_bits(params, 8) == 8 * (n_kernel + n_bias)


def test_activation_sparsity():
    acts = {"a": jnp.array([0.0, 1.0, 0.0, 2.0]), "b": [jnp.zeros((2, 2))]}
    assert activation_sparsity(acts) == pytest.approx(6 / 8)
    assert activation_sparsity({}) == 0.0
