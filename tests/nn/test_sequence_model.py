"""Tests for SequenceModel: decoding == full pass, scan/remat == plain stack, tasks, generate."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.nn.sequence_model import SequenceModel, generate

KW = dict(
    dim=16, depth=2, vocab_size=11, mixer="attention", mixer_kwargs={"num_heads": 2, "max_len": 12}
)


def _tokens(b=2, length=9):
    return jax.random.randint(jax.random.key(3), (b, length), 0, 11)


def _decode(model, variables, tokens):
    state = model.apply(variables, tokens.shape[0], method="init_state")
    one = lambda s, t: model.apply(variables, s, t, method="step")
    return jax.lax.scan(one, state, tokens.T)[1].swapaxes(0, 1)


@pytest.mark.parametrize("scan_layers", [False, True])
def test_step_decoding_equals_full_forward(scan_layers):
    model = SequenceModel(**KW, scan_layers=scan_layers)
    tokens = _tokens()
    variables = jax.jit(model.init)(jax.random.key(0), tokens)

    @jax.jit
    def run(variables):
        full, state = model.apply(variables, tokens, return_state=True)
        return model.apply(variables, tokens), full, _decode(model, variables, tokens)

    plain, full, steps = run(variables)
    assert steps.shape == (2, 9, 11)
    np.testing.assert_allclose(full, plain, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(steps, plain, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_scan_and_remat_match_plain_stack():
    tokens = _tokens()
    plain = SequenceModel(**KW)
    variables = jax.jit(plain.init)(jax.random.key(0), tokens)
    p = variables["params"]
    stacked = {k: v for k, v in p.items() if not k.startswith("block_")}
    stacked["blocks"] = jax.tree.map(lambda a, b: jnp.stack([a, b]), p["block_0"], p["block_1"])
    loss = lambda model, v: jnp.mean(model.apply(v, tokens) ** 2)

    want, g_want = jax.jit(jax.value_and_grad(lambda v: loss(plain, v)))(variables)
    for scan_layers, remat, v in [
        (False, True, variables),
        (True, False, {"params": stacked}),
        (True, True, {"params": stacked}),
    ]:
        model = SequenceModel(**KW, scan_layers=scan_layers, remat=remat)
        got, g = jax.jit(jax.value_and_grad(lambda v, m=model: loss(m, v)))(v)
        np.testing.assert_allclose(got, want, rtol=1e-5)
        g_head = g["params"]["head"]["kernel"]
        np.testing.assert_allclose(g_head, g_want["params"]["head"]["kernel"], rtol=1e-4, atol=1e-6)
        if not scan_layers:
            ga, gb = g["params"]["block_1"], g_want["params"]["block_1"]
        else:
            ga = jax.tree.map(lambda a: a[1], g["params"]["blocks"])
            gb = g_want["params"]["block_1"]
        chex.assert_trees_all_close(ga, gb, rtol=1e-4, atol=1e-6)


def test_init_scan_params_are_stacked():
    model = SequenceModel(**KW, scan_layers=True)
    p = model.init(jax.random.key(0), _tokens())["params"]
    assert p["blocks"]["mix"]["q"]["kernel"].shape == (2, 16, 2, 8)


def test_causality_by_gradients_through_embeddings():
    model = SequenceModel(
        dim=8, depth=2, num_outputs=3, mixer="attention", mixer_kwargs={"num_heads": 2}
    )
    x = jax.random.normal(jax.random.key(0), (1, 8, 5))
    variables = jax.jit(model.init)(jax.random.key(1), x)
    t = 4
    g = jax.jit(jax.grad(lambda x: model.apply(variables, x)[:, t].sum()))(x)
    assert np.all(np.asarray(g[:, t + 1 :]) == 0) and np.any(np.asarray(g[:, t]) != 0)


def test_classify_pooling():
    x = jax.random.normal(jax.random.key(0), (2, 6, 5))
    mask = jnp.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    for pool in ["mean", "last"]:
        model = SequenceModel(
            dim=8,
            depth=1,
            num_outputs=4,
            task="classify",
            pool=pool,
            mixer="attention",
            mixer_kwargs={"num_heads": 2},
        )
        variables = jax.jit(model.init)(jax.random.key(1), x)
        apply = jax.jit(model.apply)
        out = apply(variables, x, mask=mask)
        assert out.shape == (2, 4)
        # causal model: a sequence of 3 valid tokens classifies like its 3-token prefix
        short = apply(variables, x[1:, :3], mask=mask[1:, :3])
        np.testing.assert_allclose(out[1], short[0], rtol=1e-5, atol=1e-5)
        if pool == "last":
            np.testing.assert_allclose(apply(variables, x)[0], out[0], rtol=1e-6)


def test_generate_greedy_matches_argmax_of_full_pass():
    model = SequenceModel(**KW)
    prompt = _tokens(length=3)
    variables = jax.jit(model.init)(jax.random.key(0), prompt)
    out = jax.jit(lambda v, p: generate(model, v, p, 4))(variables, prompt)
    assert out.shape == (2, 7)
    np.testing.assert_array_equal(out[:, :3], prompt)
    logits = jax.jit(model.apply)(variables, out)
    np.testing.assert_array_equal(out[:, 3:], jnp.argmax(logits[:, 2:-1], -1))
    sampled = jax.jit(
        lambda v, p: generate(model, v, p, 4, rng=jax.random.key(5), temperature=1.0)
    )(variables, prompt)
    assert sampled.shape == (2, 7) and int(sampled.max()) < 11


def test_bad_inputs():
    with pytest.raises(ValueError, match="task"):
        SequenceModel(**KW, task="seq2seq").init(jax.random.key(0), _tokens())
    with pytest.raises(ValueError, match="inputs"):
        SequenceModel(**KW).init(jax.random.key(0), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="num_outputs"):
        SequenceModel(dim=8, depth=1).init(jax.random.key(0), jnp.ones((2, 3, 4)))
    with pytest.raises(KeyError, match="unknown mixer"):
        SequenceModel(dim=8, depth=1, vocab_size=5, mixer="nope").init(jax.random.key(0), _tokens())
