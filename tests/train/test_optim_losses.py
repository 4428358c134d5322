"""Optimizers and schedules from configs; losses against hand-computed references."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from lib.train import losses
from lib.train.optim import make_optimizer, make_schedule


def _cfg(**kw):
    c = ml_collections.ConfigDict(
        dict(
            name="adamw", learning_rate=1.0, schedule="constant", warmup_steps=0,
            weight_decay=0.0, grad_clip_norm=0.0,
        )
    )  # fmt: skip
    c.update(kw)
    return c


def test_schedules_hit_their_landmarks():
    warm = make_schedule(_cfg(schedule="warmup_cosine", warmup_steps=10), num_steps=110)
    assert float(warm(0)) == 0.0
    assert float(warm(5)) == pytest.approx(0.5)
    assert float(warm(10)) == pytest.approx(1.0)
    assert float(warm(60)) == pytest.approx(0.5, abs=1e-6)  # half-way down the cosine
    assert float(warm(110)) == pytest.approx(0.0, abs=1e-6)
    cos = make_schedule(_cfg(schedule="cosine"), num_steps=100)
    assert float(cos(0)) == pytest.approx(1.0) and float(cos(50)) == pytest.approx(0.5)
    lin = make_schedule(_cfg(schedule="linear", warmup_steps=10), num_steps=110)
    assert float(lin(10)) == pytest.approx(1.0) and float(lin(60)) == pytest.approx(0.5)
    assert float(make_schedule(_cfg(), num_steps=5)(1234)) == 1.0
    fixed = make_schedule(_cfg(schedule="cosine", decay_steps=10), num_steps=1000)
    assert float(fixed(10)) == pytest.approx(0.0, abs=1e-6)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown optimizer 'adamx'"):
        make_optimizer(_cfg(name="adamx"))
    with pytest.raises(ValueError, match="unknown schedule 'cosin'"):
        make_optimizer(_cfg(schedule="cosin"), num_steps=10)


@pytest.mark.parametrize(
    "name", ["adamw", "adam", "sgd", "momentum", "lamb", "lion", "adafactor", "rmsprop"]
)
def test_every_optimizer_reduces_a_quadratic(name):
    tx = make_optimizer(_cfg(name=name, learning_rate=0.05), num_steps=50)
    params = {"w": jnp.full((4, 4), 3.0)}
    state = tx.init(params)
    loss = lambda p: jnp.sum(p["w"] ** 2)
    for _ in range(20):
        grads = jax.grad(loss)(params)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    assert float(loss(params)) < 0.7 * 16 * 9


def test_sgd_step_and_clipping_match_the_formula():
    tx = make_optimizer(_cfg(name="sgd", learning_rate=0.1, grad_clip_norm=1.0))
    params = {"w": jnp.zeros(3)}
    grads = {"w": jnp.array([3.0, 4.0, 0.0])}  # norm 5 -> clipped to norm 1
    updates, _ = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * np.array([0.6, 0.8, 0.0]), rtol=1e-6)


def test_adamw_weight_decay_is_applied():
    tx = make_optimizer(_cfg(learning_rate=0.1, weight_decay=0.5))
    params = {"w": jnp.ones(2)}
    updates, _ = tx.update({"w": jnp.zeros(2)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * np.ones(2), rtol=1e-6)


def test_lm_loss_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype(np.float32)
    targets = rng.integers(0, 7, (2, 5))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], np.float32)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, targets[..., None], -1)[..., 0]
    want = (nll * mask).sum() / mask.sum()
    loss, m = losses.lm_loss(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(mask))
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    np.testing.assert_allclose(m["bits_per_token"], want / math.log(2), rtol=1e-5)
    acc = ((logits.argmax(-1) == targets) * mask).sum() / mask.sum()
    np.testing.assert_allclose(m["accuracy"], acc, rtol=1e-6)
    assert float(m["count"]) == 8.0
    # bfloat16 logits are promoted: same loss within bf16 rounding of the inputs.
    loss16, _ = losses.lm_loss(
        jnp.asarray(logits, jnp.bfloat16), jnp.asarray(targets), jnp.asarray(mask)
    )
    np.testing.assert_allclose(loss16, want, rtol=2e-2)
    with pytest.raises(ValueError, match="targets must have shape"):
        losses.lm_loss(jnp.asarray(logits), jnp.asarray(targets[:, :4]))


def test_classification_and_mse():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0]])
    labels = jnp.array([0, 1, 1])
    loss, m = losses.classification_loss(logits, labels)
    want = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0)), np.log1p(np.exp(3.0))])
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(m["accuracy"], 2 / 3, rtol=1e-6)
    smooth, _ = losses.classification_loss(logits, labels, label_smoothing=0.2)
    logp = np.asarray(jax.nn.log_softmax(logits))
    target = 0.8 * np.eye(2)[np.asarray(labels)] + 0.1
    np.testing.assert_allclose(smooth, -(target * logp).sum(-1).mean(), rtol=1e-6)
    loss, m = losses.mse_loss(
        jnp.array([1.0, 2.0, 4.0]), jnp.array([1.0, 0.0, 0.0]), jnp.array([1, 1, 0])
    )
    np.testing.assert_allclose(loss, 2.0, rtol=1e-6)
    np.testing.assert_allclose(m["rmse"], np.sqrt(2.0), rtol=1e-6)
