"""One-call transforms: quantize / low-rank factorize the Dense layers of any Linen model."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantSpec, fake_quantize
from lib.nn.transform import lowrank_dense, matching_dense_paths, quantize_dense
from lib.ops.lowrank.factor import svd_factorize


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Dense(32)(x))
        x = nn.relu(nn.Dense(32, name="hidden")(x))
        return nn.Dense(4, name="out")(x)


def _mlp_manual(p, x, fq0, fq1, fq2):
    h = nn.relu(x @ fq0(p["Dense_0"]["kernel"]) + p["Dense_0"]["bias"])
    h = nn.relu(h @ fq1(p["hidden"]["kernel"]) + p["hidden"]["bias"])
    return h @ fq2(p["out"]["kernel"]) + p["out"]["bias"]


@pytest.fixture(scope="module")
def mlp_setup():
    model = MLP()
    x = jax.random.normal(jax.random.PRNGKey(0), (5, 12))
    return model, jax.jit(model.init)(jax.random.PRNGKey(1), x), x


def test_quantize_dense_all_and_by_pattern(mlp_setup):
    model, params, x = mlp_setup
    spec = QuantSpec("int", bits=4, axis=-1)
    q = quantize_dense(model, spec)
    fq = lambda k: fake_quantize(k, spec)
    ident = lambda k: k
    assert jax.tree.structure(q.init(jax.random.PRNGKey(1), x)) == jax.tree.structure(params)
    q_apply = jax.jit(q.apply)
    np.testing.assert_allclose(
        q_apply(params, x), _mlp_manual(params["params"], x, fq, fq, fq), rtol=1e-5, atol=1e-6
    )
    q_hidden = quantize_dense(model, spec, pattern="hid*")
    np.testing.assert_allclose(
        jax.jit(q_hidden.apply)(params, x),
        _mlp_manual(params["params"], x, ident, fq, ident),
        rtol=1e-5,
        atol=1e-6,
    )
    assert not np.allclose(q_apply(params, x), model.apply(params, x), atol=1e-4)
    # QAT: straight-through gradients reach every float kernel
    g = jax.jit(jax.grad(lambda p: jnp.sum(q.apply(p, x) ** 2)))(params)
    assert all(float(jnp.abs(t).sum()) > 0 for t in jax.tree.leaves(g))
    # other formats run and the quantized act path is used
    for w, a in [
        (QuantSpec("fp", exponent_bits=2, mantissa_bits=1), None),
        (QuantSpec("binary", axis=-1), QuantSpec("int", bits=8)),
        (QuantSpec("mx", mx_format="mxfp4", block_size=4), None),
    ]:
        y = jax.jit(quantize_dense(model, w, a).apply)(params, x)
        assert y.shape == (5, 4) and bool(jnp.all(jnp.isfinite(y)))


def test_quantize_dense_lsq_creates_steps(mlp_setup):
    model, _, x = mlp_setup
    q = quantize_dense(model, QuantSpec("lsq", bits=4), QuantSpec("lsq", bits=8), pattern="out")
    p = jax.jit(q.init)(jax.random.PRNGKey(1), x)
    assert set(p["params"]["out"]) == {"kernel", "bias", "kernel_step", "act_step"}
    assert "kernel_step" not in p["params"]["hidden"]
    g = jax.jit(jax.grad(lambda t: jnp.sum(q.apply(t, x) ** 2)))(p)
    assert float(jnp.abs(g["params"]["out"]["kernel_step"])) > 0


def test_lowrank_dense_svd_init_and_training(mlp_setup):
    model, params, x = mlp_setup
    assert matching_dense_paths(model, params, x) == ["Dense_0", "hidden", "out"]
    full = lowrank_dense(model, params, x, pattern="hidden", rank=32)
    np.testing.assert_allclose(full.apply(full.params, x), model.apply(params, x), atol=1e-4)
    lr = lowrank_dense(model, params, x, pattern="hidden", rank=3)
    p = lr.params["params"]["hidden"]
    assert set(p) == {"u", "v", "bias"} and p["u"].shape == (32, 3) and lr.ranks == {"hidden": 3}
    u, v = svd_factorize(params["params"]["hidden"]["kernel"], 3)
    np.testing.assert_allclose(p["u"] @ p["v"], u @ v, atol=1e-5)
    ident = lambda k: k
    manual = _mlp_manual(
        {**params["params"], "hidden": {"kernel": u @ v, "bias": p["bias"]}}, x, ident, ident, ident
    )
    np.testing.assert_allclose(lr.apply(lr.params, x), manual, rtol=1e-4, atol=1e-5)
    en = lowrank_dense(model, params, x, energy=0.5)
    assert set(en.ranks) == {"Dense_0", "hidden", "out"} and all(r >= 1 for r in en.ranks.values())
    g = jax.grad(lambda t: jnp.sum(lr.apply(t, x) ** 2))(lr.params)
    assert float(jnp.abs(g["params"]["hidden"]["u"]).sum()) > 0
    with pytest.raises(ValueError, match="exactly one"):
        lowrank_dense(model, params, x)


def test_transform_on_lib_model():
    blocks = pytest.importorskip("lib.nn.blocks")
    model = blocks.GatedMLP(16, 32)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 7, 16))
    params = jax.jit(model.init)(jax.random.PRNGKey(3), x)
    assert matching_dense_paths(model, params, x) == ["gate", "up", "down"]
    spec = QuantSpec("int", bits=8, axis=-1)
    y8 = jax.jit(quantize_dense(model, spec, pattern="down").apply)(params, x)
    y = jax.jit(model.apply)(params, x)
    assert 0 < float(jnp.max(jnp.abs(y8 - y))) < 0.05 * float(jnp.max(jnp.abs(y)))
    lr = lowrank_dense(model, params, x, pattern="[gu]*", rank=16)
    np.testing.assert_allclose(jax.jit(lr.apply)(lr.params, x), y, atol=1e-4)
    assert set(lr.ranks) == {"gate", "up"}


def test_transform_on_scanned_sequence_model():
    sm = pytest.importorskip("lib.nn.sequence_model")
    model = sm.SequenceModel(dim=16, depth=2, mixer="attention", vocab_size=11, scan_layers=True)
    x = jnp.arange(10).reshape(2, 5) % 11
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    paths = matching_dense_paths(model, params, x, pattern="*mlp*")
    assert paths == ["blocks/mlp/gate", "blocks/mlp/up", "blocks/mlp/down"]
    y = jax.jit(model.apply)(params, x)
    yq = jax.jit(quantize_dense(model, QuantSpec("int", bits=8, axis=-1), pattern="*mlp*").apply)
    assert 0 < float(jnp.max(jnp.abs(yq(params, x) - y))) < 0.05 * float(jnp.max(jnp.abs(y)))
    lr = lowrank_dense(model, params, x, pattern="*mlp*", rank=16)  # full rank: same outputs
    assert lr.params["params"]["blocks"]["mlp"]["up"]["u"].shape[0] == 2  # stacked layers
    np.testing.assert_allclose(jax.jit(lr.apply)(lr.params, x), y, atol=1e-4)
