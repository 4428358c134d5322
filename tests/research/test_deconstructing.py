"""Deconstructing recurrence/attention/gating: Elman vs a loop, causality, residual init, smoke."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from research.deconstructing.model import VARIANTS, Elman, Forecaster


def test_elman_matches_a_python_loop():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 7, 5))
    m = Elman(5)
    p = m.init(jax.random.PRNGKey(1), x)
    y = m.apply(p, x)
    w, b, u = p["params"]["w_ih"]["kernel"], p["params"]["w_ih"]["bias"], p["params"]["w_hh"]
    h = np.zeros((2, 5))
    for t in range(7):
        h = np.tanh(np.asarray(x[:, t]) @ np.asarray(w) + np.asarray(b) + h @ np.asarray(u))
        np.testing.assert_allclose(y[:, t], h, atol=1e-5)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_causal_and_starts_as_persistence(variant):
    """Each variant's forecast at t ignores inputs after t; the zero head starts at x_t."""
    rec, attn = VARIANTS[variant]
    m = Forecaster(3, dim=8, depth=1, num_heads=2, recurrence=rec, attention=attn)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 6, 3))
    p = m.init(jax.random.PRNGKey(3), x)
    np.testing.assert_allclose(m.apply(p, x), x, atol=1e-6)  # zero-initialised head
    p = jax.tree_util.tree_map(lambda a: a + 0.1, p)  # a non-zero head
    y = m.apply(p, x)
    y2 = m.apply(p, x.at[:, 4:].add(1.0))
    np.testing.assert_allclose(y[:, :4], y2[:, :4], atol=1e-5)
    assert not np.allclose(y[:, 4:], y2[:, 4:])


def test_bad_recurrence_raises():
    with pytest.raises(ValueError, match="recurrence"):
        Forecaster(2, recurrence="nope").init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 2)))


@pytest.mark.slow
def test_smoke_run(tmp_path):
    from lib.train.loop import train_and_evaluate
    from research.deconstructing.configs.forecast import get_config
    from research.deconstructing.model import build

    config = get_config("lorenz96,gru_attention,smoke")
    config.data.data_dir = str(tmp_path / "data")
    result = train_and_evaluate(config, str(tmp_path / "run"), **build(config))
    assert np.isfinite(result["test_loss"]) and result["step"] == config.train.num_steps


def test_matched_width_hits_the_parameter_budget():
    """Variants of very different sizes per width (an MLP, an attention model, a GRU +
    attention hybrid with two mixers per block) solved to a small GRU's count: within 2%,
    attention widths in whole even-sized heads; the count matches a real init."""
    from research.deconstructing.model import count_params, matched_width

    target = count_params("gru", 3, 16, 1, 2)
    for variant in ("mlp", "transformer", "gru_attention"):
        dim, mlp_dim = matched_width(variant, target, 3, 1, 2)
        n = count_params(variant, 3, dim, 1, 2, mlp_dim)
        assert abs(n / target - 1) < 0.02, (variant, dim, mlp_dim, n, target)
        if VARIANTS[variant][1]:
            assert dim % 4 == 0
    rec, attn = VARIANTS["transformer"]
    dim, mlp_dim = matched_width("transformer", target, 3, 1, 2)
    m = Forecaster(3, dim, 1, 2, rec, attn, mlp_dim=mlp_dim)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 3)))
    assert sum(a.size for a in jax.tree_util.tree_leaves(p)) == count_params(
        "transformer", 3, dim, 1, 2, mlp_dim
    )
    with pytest.raises(ValueError, match="narrowest"):
        matched_width("gru_attention", 10, 3, 1, 2)


def full_batches(make_iter, batch_size):
    """A fresh-iterator factory like `make_iter` that yields only batches of `batch_size`."""
    return lambda: (b for b in make_iter() if len(b["inputs"]) == batch_size)


@pytest.mark.slow
def test_claim_recurrence_helps_on_a_real_series(tmp_path):
    """What holds at toy scale (README): on yearly sunspots (windows of 16), a recurrent,
    gated forecaster (GRU) beats the per-step MLP (no recurrence, no attention) by a wide
    margin and beats persistence. The paper's gating-vs-no-gating ranking on Lorenz-96 is
    within noise here (and flips at matched parameters), so it is not tested."""
    from lib.train.loop import train_and_evaluate
    from research.deconstructing.configs.forecast import get_config
    from research.deconstructing.model import build

    rel = {}
    for variant in ("gru", "mlp"):
        config = get_config(f"sunspots,{variant}")
        config.data.data_dir = str(tmp_path / "data")
        config.train.num_steps = 150
        parts = build(config)
        # The 8 simulated test devices need whole batches: the validation split (smaller than
        # one batch) is not used, and the test split's last, partial batch is skipped.
        parts["eval_data"] = None
        parts["test_data"] = full_batches(parts["test_data"], config.data.batch_size)
        r = train_and_evaluate(config, str(tmp_path / variant), **parts)
        rel[variant] = float(r["test_loss"]) / float(r["test_persistence_mse"])
    print(rel)
    assert rel["gru"] < 0.6 and rel["mlp"] > rel["gru"] + 0.2, rel  # measured 0.41, 0.92
