"""Sparsity: masks, 2:4 validity, DSFormer straight-through, SpAtten cascade, Delta layer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lib.ops.sparse.pruning import (
    activation_sparsity,
    delta_layer,
    delta_sparsity_loss,
    delta_step,
    dsformer_apply,
    is_valid_nm,
    magnitude_mask,
    nm_mask,
    nm_sparsify_ste,
    spatten_head_mask,
    spatten_progressive_attention,
    spatten_prune_tokens,
)


def test_magnitude_mask():
    w = jax.random.normal(jax.random.PRNGKey(0), (32, 16))
    m = magnitude_mask(w, 0.75)
    assert int(m.sum()) == 128
    assert float(jnp.abs(w)[m].min()) >= float(jnp.abs(w)[~m].max())
    mc = magnitude_mask(w, 0.5, axis=0)  # per column: 16 of 32 rows kept
    np.testing.assert_array_equal(mc.sum(axis=0), 16)
    with pytest.raises(ValueError, match="sparsity"):
        magnitude_mask(w, 1.0)


def test_nm_mask_valid_and_largest():
    w = jax.random.normal(jax.random.PRNGKey(1), (16, 8))
    m = nm_mask(w, 2, 4)
    assert m.shape == w.shape and is_valid_nm(m, 2, 4)
    groups = np.asarray(m).T.reshape(8, 4, 4)
    np.testing.assert_array_equal(groups.sum(-1), 2)  # exactly 2 of every 4
    a = np.abs(np.asarray(w)).T.reshape(8, 4, 4)
    ref = np.argsort(-a, axis=-1)[..., :2]
    np.testing.assert_array_equal(
        np.sort(np.nonzero(groups)[2].reshape(8, 4, 2), -1), np.sort(ref, -1)
    )
    assert is_valid_nm(nm_mask(w, 1, 4, axis=1), 1, 4, axis=1)
    assert not is_valid_nm(jnp.ones((8, 2)), 2, 4)
    with pytest.raises(ValueError, match="not divisible by m=4"):
        nm_mask(jnp.ones((6, 4)), 2, 4)


def test_dsformer_straight_through_and_training():
    ws = jax.random.normal(jax.random.PRNGKey(2), (8, 12))
    g = jax.grad(lambda t: (nm_sparsify_ste(t) * jnp.arange(96.0).reshape(8, 12)).sum())(ws)
    np.testing.assert_array_equal(g, jnp.arange(96.0).reshape(8, 12))  # dense gradient
    # fit W (16 x 12) ~ D (16 x 8) @ S (8 x 12, 2:4): the loss falls and the mask stays valid
    k1, k2, k3, k4 = jax.random.split(jax.random.PRNGKey(3), 4)
    w = jax.random.normal(k1, (16, 12))
    x = jax.random.normal(k2, (256, 16))
    p = {"d": jax.random.normal(k3, (16, 8)) * 0.3, "s": jax.random.normal(k4, (8, 12)) * 0.3}
    loss = lambda q: jnp.mean((dsformer_apply(x, q["d"], q["s"]) - x @ w) ** 2)

    def body(_, q):
        gq = jax.grad(loss)(q)
        return jax.tree.map(lambda a, b: a - 0.05 * b, q, gq)

    p1 = jax.jit(lambda q: jax.lax.fori_loop(0, 300, body, q))(p)
    assert float(loss(p1)) < 0.5 * float(loss(p))
    assert is_valid_nm(nm_sparsify_ste(p1["s"]), 2, 4)


def test_spatten_cascade_token_and_head_pruning():
    b, h, l, d = 2, 3, 8, 4
    x = jax.random.normal(jax.random.PRNGKey(4), (b, l, d))
    # layer 1: every query attends to tokens {1, 3, 5, 6} (token 6 weakly)
    w1 = jnp.array([0, 3, 0, 3, 0, 2, 1, 0.0]) + 1e-3
    p1 = jnp.broadcast_to(w1 / w1.sum(), (b, h, l, l))
    x1, acc1, pos1 = spatten_prune_tokens(x, p1, jnp.zeros((b, l)), 4)
    np.testing.assert_array_equal(pos1, [[1, 3, 5, 6]] * b)
    np.testing.assert_array_equal(x1, x[:, jnp.array([1, 3, 5, 6])])
    # layer 2 over the 4 survivors: attention moves to token 6, but 1 and 3 carry their
    # accumulated importance; the cascade never revives pruned tokens
    w2 = jnp.array([0.2, 0.2, 0.2, 0.4])
    p2 = jnp.broadcast_to(w2, (b, h, 4, 4))
    _, acc2, pos2 = spatten_prune_tokens(x1, p2, acc1, 2, pos1)
    np.testing.assert_array_equal(pos2, [[1, 3]] * b)
    np.testing.assert_allclose(acc2[0], acc1[0, :2] + h * 4 * 0.2, rtol=1e-5)
    heads = jnp.ones((b, l, h, d)) * jnp.array([0.5, 2.0, 1.0])[:, None]
    mask, acc_h = spatten_head_mask(heads, jnp.zeros(h), 2)
    np.testing.assert_array_equal(mask, [0, 1, 1])
    np.testing.assert_allclose(acc_h, jnp.array([0.5, 2.0, 1.0]) * b * l * d)
    with pytest.raises(ValueError, match="keep must be"):
        spatten_prune_tokens(x, p1, jnp.zeros((b, l)), 9)


def _delta_python(x, thr):
    state = np.zeros_like(x[:, 0])
    recon, sent = [], []
    for t in range(x.shape[1]):
        d = x[:, t] - state
        s = np.where(np.abs(d) > thr, d, 0.0)
        state = state + s
        recon.append(state)
        sent.append(s)
    return np.stack(recon, 1), np.stack(sent, 1)


def test_delta_layer_reference_step_and_sparsity():
    key = jax.random.PRNGKey(5)
    t = jnp.linspace(0, 6, 37)
    x = jnp.sin(t)[None, :, None] * jnp.ones((2, 1, 5)) + 0.05 * jax.random.normal(key, (2, 37, 5))
    thr = 0.1
    recon, sent = jax.jit(lambda a: delta_layer(a, thr))(x)
    r_ref, s_ref = _delta_python(np.asarray(x), thr)
    np.testing.assert_allclose(recon, r_ref, atol=1e-6)
    np.testing.assert_allclose(sent, s_ref, atol=1e-6)
    # the receiver is never further than the threshold from the signal
    assert float(jnp.max(jnp.abs(recon - x))) <= thr + 1e-6
    # step form == full form, and resuming from a final state == running in one go
    state = jnp.zeros((2, 5))
    for i in range(5):
        state, (s_i, r_i) = delta_step(state, x[:, i], thr)
        np.testing.assert_allclose(r_i, recon[:, i], atol=1e-6)
    r_a, _, fin = delta_layer(x[:, :20], thr, return_final_state=True)
    r_b, _ = delta_layer(x[:, 20:], thr, initial_state=fin)
    np.testing.assert_allclose(jnp.concatenate([r_a, r_b], 1), recon, atol=1e-6)
    # sparsity rises with the threshold; gradient is straight-through; loss is L1 of changes
    sp = [float(activation_sparsity(delta_layer(x, th)[1])) for th in (0.0, 0.1, 0.3)]
    assert sp[0] < sp[1] < sp[2] and sp[2] > 0.7
    g = jax.grad(lambda a: delta_layer(a, thr)[0].sum())(x)
    np.testing.assert_array_equal(g, 1.0)
    np.testing.assert_allclose(delta_sparsity_loss(x), jnp.mean(jnp.abs(x[:, 1:] - x[:, :-1])))


def test_spatten_progressive_quantization():
    kq, kk, kv = jax.random.split(jax.random.PRNGKey(6), 3)
    b, l, h, d = 2, 12, 2, 16
    # half the queries are sharp (large norm -> peaked attention), half are flat
    q = (
        jax.random.normal(kq, (b, l, h, d))
        * jnp.where(jnp.arange(l) % 2 == 0, 3.0, 0.1)[:, None, None]
    )
    k = jax.random.normal(kk, (b, l, h, d))
    v = jax.random.normal(kv, (b, l, h, d))
    run = jax.jit(spatten_progressive_attention, static_argnames=("msb_bits", "full_bits"))
    never, r0, bits0 = run(q, k, v, threshold=0.0)
    always, r1, bits1 = run(q, k, v, threshold=1.01)
    assert not bool(r0.any()) and bool(r1.all()) and float(bits0) == 4 and float(bits1) == 8
    out, refetch, bits = run(q, k, v, threshold=0.3)
    # exactly the flat rows refetch; they get the full-precision output, the others the MSB one
    flat = jnp.max(jax.nn.softmax(jnp.einsum("blhd,bmhd->bhlm", q, k) / 4.0, -1), -1) < 0.3
    assert float(jnp.mean(refetch == flat)) > 0.9
    rows = jnp.swapaxes(refetch, 1, 2)[..., None]
    np.testing.assert_allclose(out, jnp.where(rows, always, never), atol=1e-6)
    assert 4 < float(bits) < 8
