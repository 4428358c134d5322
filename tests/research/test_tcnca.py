"""TCNCA (Terzic et al., 2023) project: MEGA's EMA by FFT equals its recurrence; the TCNCA
model is causal, carries information across attention chunks, and decodes token by token
like its full form; the study launcher's smoke run trains through the one training path; the
TCN carries a copied symbol past the attention chunk, which chunked attention alone cannot."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import launch.tcnca
from lib.nn.sequence_model import SequenceModel
from lib.train.loop import train_and_evaluate
from lib.train.sharding import make_mesh
from research.tcnca import ema as ema_ops
from research.tcnca.configs import recall
from research.tcnca.model import build, make_model

OUTPUTS = ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json")


def _ema_params(dim, ndim, seed=0):
    rng = np.random.default_rng(seed)
    return [jnp.asarray(rng.normal(size=(dim, ndim)), jnp.float32) for _ in range(4)]


@pytest.mark.parametrize("length", [1, 37, 2048])
def test_ema_fft_equals_recurrence(length):
    params = _ema_params(5, 4)
    x = jnp.asarray(np.random.default_rng(length).normal(size=(2, length, 5)), jnp.float32)
    ref, _ = ema_ops.ema_ref(x, *params)
    fft = ema_ops.ema(x, *params, method="fft")
    assert np.isfinite(np.asarray(fft)).all() and np.abs(np.asarray(ref)).max() > 0.1
    np.testing.assert_allclose(fft, ref, rtol=1e-4, atol=2e-5)


def test_ema_gradients_fft_equal_recurrence():
    params = _ema_params(4, 3, seed=1)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 29, 4)), jnp.float32)
    w = jnp.asarray(np.random.default_rng(3).normal(size=(2, 29, 4)), jnp.float32)
    loss = lambda method: lambda x, p: jnp.sum(w * ema_ops.ema(x, *p, method=method))
    g_fft = jax.grad(loss("fft"), argnums=(0, 1))(x, params)
    g_ref = jax.grad(loss("ref"), argnums=(0, 1))(x, params)
    for a, b in zip(jax.tree.leaves(g_fft), jax.tree.leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_ema_steps_and_initial_state_continue_the_recurrence():
    params = _ema_params(3, 2, seed=4)
    x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 12, 3)), jnp.float32)
    full, h_full = ema_ops.ema_ref(x, *params)
    first, h = ema_ops.ema_ref(x[:, :5], *params)
    ys = [first]
    for t in range(5, 12):
        h, y_t = ema_ops.ema_step(h, x[:, t], *params)
        ys.append(y_t[:, None])
    np.testing.assert_allclose(jnp.concatenate(ys, 1), full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, h_full, rtol=1e-5, atol=1e-5)


def test_ema_kernel_matches_closed_form():
    # One channel, one dimension: k_t = eta * alpha * beta * (1 - alpha delta)^t / sqrt(1).
    a, d, b, e = 0.3, -0.4, 1.5, -0.7
    p = [jnp.full((1, 1), v) for v in (a, d, b, e)]
    sig = lambda v: 1 / (1 + np.exp(-v))
    t = np.arange(6)
    want = e * sig(a) * b * (1 - sig(a) * sig(d)) ** t
    np.testing.assert_allclose(ema_ops.ema_kernel(*p, 6)[:, 0], want, rtol=1e-5)


@pytest.mark.claim
@pytest.mark.parametrize("recurrence", ["tcn", "ema"])
def test_tcnca_model_is_causal_and_crosses_chunks(recurrence):
    # Float inputs; chunk 4, so position 9 attends only to 8..9: its gradient must be zero
    # after 9 (exactly for the TCN; the FFT's round-off leaks ~1e-8, so within 1e-6 of the
    # largest for the EMA), and non-zero before the chunk (only the recurrence carries that).
    model = SequenceModel(
        dim=16, depth=1, mixer="tcnca", num_outputs=3,
        mixer_kwargs={"recurrence": recurrence, "chunk_size": 4, "num_layers": 3},
    )  # fmt: skip
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 14, 5)), jnp.float32)
    params = model.init(jax.random.key(0), x)
    t = 9
    g = jax.jit(jax.grad(lambda x: jnp.sum(model.apply(params, x)[:, t])))(x)
    per_pos = np.abs(np.asarray(g)).sum(axis=(0, 2))
    future = per_pos[t + 1 :] / per_pos.max()
    assert (future == 0).all() if recurrence == "tcn" else (future < 1e-6).all(), per_pos
    assert (per_pos[: t + 1] > 0).all(), per_pos


@pytest.mark.claim
@pytest.mark.parametrize("recurrence", ["tcn", "ema", "none"])
def test_step_decoding_equals_full_sequence(recurrence):
    model = make_model(recurrence, 16, 1, 11, chunk_size=4, num_layers=2, max_len=16)
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, 11, (2, 10)), jnp.int32)
    params = model.init(jax.random.key(1), tokens)
    full = jax.jit(model.apply)(params, tokens)
    state = model.apply(params, 2, method="init_state")
    step = lambda s, tok: model.apply(params, s, tok, method="step")
    _, ys = jax.jit(lambda s, toks: jax.lax.scan(step, s, toks))(state, tokens.T)
    np.testing.assert_allclose(ys.transpose(1, 0, 2), full, rtol=1e-4, atol=1e-4)


def test_bad_configs_are_errors():
    x = jnp.zeros((1, 4), jnp.int32)
    with pytest.raises(ValueError, match="recurrence"):
        make_model("lstm", 16, 1, 5).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="even-width heads"):
        make_model("tcn", 18, 1, 5, num_heads=4).init(jax.random.key(0), x)
    with pytest.raises(ValueError, match="unknown method"):
        ema_ops.ema(jnp.zeros((1, 4, 2)), *_ema_params(2, 2), method="scan")
    with pytest.raises(ValueError, match="beta"):
        p = _ema_params(2, 2)
        ema_ops.ema(jnp.zeros((1, 4, 2)), p[0], p[1], p[2][:, :1], p[3])
    with pytest.raises(ValueError, match="config arg"):
        recall.get_config("big")


@pytest.mark.claim
def test_study_cells_and_smoke_run(tmp_path):
    names = [name for name, _ in launch.tcnca.variants(recall.get_config())]
    assert names[:3] == ["tcn_len32_keys8", "ema_len32_keys8", "none_len32_keys8"]
    assert len(names) == 12 and names[-1] == "none_len128_keys32"
    rows = launch.tcnca.run(recall.get_config("smoke"), str(tmp_path))
    assert [r["variant"] for r in rows] == ["tcn_len16_keys4"]
    assert np.isfinite(rows[0]["train_loss"]) and 0 <= rows[0]["test_accuracy"] <= 1
    for out in OUTPUTS:
        assert os.path.exists(tmp_path / "tcn_len16_keys4" / out), out


@pytest.mark.claim
@pytest.mark.slow
def test_claim_tcn_carries_memory_across_attention_chunks(tmp_path):
    # TCNCA's premise (sec. 3): the dilated TCN takes over MEGA's recurrence as the path that
    # carries context past the attention chunk. Copying memory (`lib.data` `copying`): 5
    # symbols of 8 (chance 12.5%), recalled 9 positions later; chunks of 4, so attention alone
    # cannot see the symbol, while 4 TCN layers (receptive field 15) can. Measured with the
    # old trainer: TCN 100%, attention alone 13.6% (through the shared path: 100%, 10.2%),
    # MEGA's EMA in place of the TCN 36.9% (not
    # asserted: its FFT model compiles slowly). With 3 TCN layers, lag 7 and 100 steps the TCN
    # had not learned.
    acc = {}
    for rec in ("tcn", "none"):
        c = recall.get_config()
        c.model.recurrence, c.model.dim, c.model.depth = rec, 16, 1
        c.model.mixer = {"chunk_size": 4, "num_layers": 4, "max_len": 16}
        c.data.task, c.data.options = "copying", {"copy_len": 5, "lag": 4, "num_symbols": 8}
        c.data.eval_batches, c.train.num_steps, c.optimizer.learning_rate = 0, 200, 1e-2
        c.train.plot, c.train.progress_bar, c.train.checkpoint_every = False, False, 0
        mesh = make_mesh(devices=jax.devices()[:1])
        result = train_and_evaluate(c, str(tmp_path / rec), mesh=mesh, **build(c))
        acc[rec] = result["test_accuracy"]  # 8 batches of 16 sequences, 5 symbols each
    print("copying across chunks:", acc)
    assert acc["tcn"] > 0.9, acc
    assert acc["none"] < 0.25, acc
