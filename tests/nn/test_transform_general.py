"""One-call transforms on `nn.DenseGeneral` (attention's q/k/v/o): quantize and low-rank
factorize them exactly as doing it by hand on the params tree would."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.quant.layers import QuantSpec, fake_quantize
from lib.nn.sequence_model import SequenceModel
from lib.nn.transform import lowrank_dense, matching_dense_paths, quantize_dense
from lib.ops.lowrank.factor import svd_factorize

SPEC = QuantSpec("int", bits=4, axis=-1)
MIX = ("q", "k", "v", "o")
N_IN = {"q": 1, "k": 1, "v": 1, "o": 2}  # kernel axes contracted with the input


def _fq_kernel(kernel, n_in):
    """Fake-quantize a `[*in, *out]` kernel as the matrix `[prod(in), prod(out)]`, by hand."""
    rows = math.prod(kernel.shape[:n_in])
    return fake_quantize(kernel.reshape(rows, -1), SPEC).reshape(kernel.shape)


def _map_mix(params, fn, names=MIX):
    """A copy of `params` with `fn(kernel, name)` applied to the named attention kernels."""
    p = jax.tree.map(lambda t: t, params)
    for block in [k for k in p["params"] if k.startswith("block")]:
        for name in names:
            layer = p["params"][block]["mix"][name]
            layer["kernel"] = fn(layer["kernel"], name)
    return p


@pytest.fixture(scope="module")
def attention_lm():
    model = SequenceModel(dim=16, depth=2, mixer="attention", vocab_size=11)
    tokens = jnp.arange(48).reshape(8, 6) % 11
    return model, jax.jit(model.init)(jax.random.PRNGKey(0), tokens), tokens


def test_dense_general_layer_with_non_trailing_axes():
    layer = nn.DenseGeneral(features=(4, 5), axis=(1, -1))
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 6, 7))
    params = layer.init(jax.random.PRNGKey(1), x)
    p = params["params"]
    y = jax.jit(quantize_dense(layer, SPEC).apply)(params, x)
    kq = _fq_kernel(p["kernel"], 2)
    ref = jnp.einsum("bimj,ijfg->bmfg", x, kq) + p["bias"]
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(y - layer.apply(params, x)))) > 1e-3  # 4 bits do change it
    g = jax.grad(lambda t: jnp.sum(quantize_dense(layer, SPEC).apply(t, x) ** 2))(params)
    assert float(jnp.abs(g["params"]["kernel"]).sum()) > 0  # straight-through (QAT)
    lr = lowrank_dense(layer, params, x, rank=28)  # min(3*7, 4*5) = 20: full rank
    assert lr.ranks == {"": 20} and lr.params["params"]["u"].shape == (3, 7, 20)
    np.testing.assert_allclose(lr.apply(lr.params, x), layer.apply(params, x), atol=1e-4)
    with pytest.raises(ValueError, match="batch_dims"):
        bad = nn.DenseGeneral(4, batch_dims=(0,))
        xb = jnp.ones((2, 3))
        quantize_dense(bad, SPEC).apply(bad.init(jax.random.PRNGKey(0), xb), xb)


def test_quantize_dense_matches_quantized_params(attention_lm):
    model, params, tokens = attention_lm
    paths = matching_dense_paths(model, params, tokens, pattern="*mix*")
    assert paths == [f"block_{i}/mix/{n}" for i in (0, 1) for n in MIX]
    # all four projections, by pattern
    q_all = quantize_dense(model, SPEC, pattern="*mix*")
    ref_params = _map_mix(params, lambda k, n: _fq_kernel(k, N_IN[n]))
    # only q and k: v, o (and the MLP Dense layers) stay float
    assert matching_dense_paths(model, params, tokens, pattern="*mix/[qk]") == [
        f"block_{i}/mix/{n}" for i in (0, 1) for n in ("q", "k")
    ]
    q_qk = quantize_dense(model, SPEC, pattern="*mix/[qk]")
    ref_qk = _map_mix(params, lambda k, n: _fq_kernel(k, N_IN[n]), names=("q", "k"))

    @jax.jit
    def run(params, ref_params, ref_qk):
        return (
            q_all.apply(params, tokens),
            model.apply(ref_params, tokens),
            q_qk.apply(params, tokens),
            model.apply(ref_qk, tokens),
            model.apply(params, tokens),
        )

    y_all, want_all, y_qk, want_qk, y = run(params, ref_params, ref_qk)
    np.testing.assert_allclose(y_all, want_all, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y_qk, want_qk, rtol=1e-5, atol=1e-5)
    assert float(jnp.max(jnp.abs(y_all - y))) > 1e-3
    assert float(jnp.max(jnp.abs(y_all - y_qk))) > 1e-3


def test_lowrank_dense_general_in_scanned_model():
    model = SequenceModel(dim=16, depth=2, mixer="attention", vocab_size=11, scan_layers=True)
    tokens = jnp.arange(48).reshape(8, 6) % 11
    params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens)
    y = model.apply(params, tokens)
    full = lowrank_dense(model, params, tokens, pattern="*mix*", rank=16)
    np.testing.assert_allclose(jax.jit(full.apply)(full.params, tokens), y, atol=1e-4)
    r = 3
    lr = lowrank_dense(model, params, tokens, pattern="*mix*", rank=r)
    mix = lr.params["params"]["blocks"]["mix"]
    assert lr.ranks == {f"blocks/mix/{n}": r for n in MIX}
    assert mix["q"]["u"].shape == (2, 16, r) and mix["q"]["v"].shape == (2, r, 4, 4)
    assert mix["o"]["u"].shape == (2, 4, 4, r) and mix["o"]["v"].shape == (2, r, 16)
    # parameters: each of 2 layers x 4 projections goes from 16*16 to r*(16+16)
    count = lambda p: sum(t.size for t in jax.tree.leaves(p))
    assert count(params) - count(lr.params) == 2 * 4 * (16 * 16 - r * (16 + 16))
    # the factorized model equals the float model with each kernel replaced by its SVD u @ v

    def truncated(k, n):
        rows = math.prod(k.shape[1 : 1 + N_IN[n]])
        u, v = jax.vmap(lambda m: svd_factorize(m, r))(k.reshape(2, rows, -1))
        return (u @ v).reshape(k.shape)

    ref = _map_mix(params, truncated)  # "blocks": the stacked layers of nn.scan
    y_lr, y_ref = jax.jit(lambda a, b: (lr.apply(a, tokens), model.apply(b, tokens)))(
        lr.params, ref
    )
    np.testing.assert_allclose(y_lr, y_ref, rtol=1e-4, atol=1e-5)
    assert float(jnp.max(jnp.abs(y_lr - y))) > 1e-3
