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


# One case per block layout: MLP only, Elman, the LSTM mixer, and a GRU + attention hybrid
# (which covers the "gru" and "transformer" branches: a recurrent and an attention block).
@pytest.mark.claim
@pytest.mark.parametrize("variant", ["mlp", "rnn", "lstm", "gru_attention"])
def test_causal_and_starts_as_persistence(variant):
    """Each variant's forecast at t ignores inputs after t; the zero head starts at x_t."""
    rec, attn = VARIANTS[variant]
    m = Forecaster(3, dim=8, depth=1, num_heads=2, recurrence=rec, attention=attn)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 6, 3))
    p = m.init(jax.random.PRNGKey(3), x)
    apply = jax.jit(m.apply)  # one compile for the three calls
    np.testing.assert_allclose(apply(p, x), x, atol=1e-6)  # zero-initialised head
    p = jax.tree_util.tree_map(lambda a: a + 0.1, p)  # a non-zero head
    y = apply(p, x)
    y2 = apply(p, x.at[:, 4:].add(1.0))
    np.testing.assert_allclose(y[:, :4], y2[:, :4], atol=1e-5)
    assert not np.allclose(y[:, 4:], y2[:, 4:])


def test_bad_recurrence_raises():
    with pytest.raises(ValueError, match="recurrence"):
        Forecaster(2, recurrence="nope").init(jax.random.PRNGKey(0), jnp.zeros((1, 3, 2)))


@pytest.mark.claim
def test_smoke_launch(tmp_path):
    """The launch script end to end (build, `train_and_evaluate`, the results table)."""
    import lib.data
    from launch.deconstructing import run
    from research.deconstructing.configs.forecast import get_config
    from research.deconstructing.model import data_name

    config = get_config("lorenz96,gru_attention,smoke")
    config.data.data_dir = str(tmp_path / "data")
    lib.data.prepare(data_name(config), config.data.data_dir)  # build() only reads
    (rows,) = run(config, str(tmp_path / "run")).values()
    assert len(rows) == 1 and rows[0]["variant"] == "gru_attention"
    assert np.isfinite(rows[0]["relative_mse"])
    assert (tmp_path / "run" / "results.md").exists()


@pytest.mark.claim
def test_matched_width_hits_the_parameter_budget():
    """Variants of very different sizes per width (an MLP, a GRU + attention hybrid with two
    mixers per block) solved to a small GRU's count: within 2%,
    attention widths in whole even-sized heads; the count matches a real init."""
    from research.deconstructing.model import count_params, matched_width

    target = count_params("gru", 3, 16, 1, 2)
    widths = {}
    for variant in ("mlp", "gru_attention"):  # max_dim 64: fewer bisection steps
        dim, mlp_dim = widths[variant] = matched_width(variant, target, 3, 1, 2, max_dim=64)
        n = count_params(variant, 3, dim, 1, 2, mlp_dim)
        assert abs(n / target - 1) < 0.02, (variant, dim, mlp_dim, n, target)
    assert widths["gru_attention"][0] % 4 == 0 and widths["mlp"][0] > 16
    dim, mlp_dim = widths["mlp"]
    m = Forecaster(3, dim, 1, 2, "none", False, mlp_dim=mlp_dim)
    p = m.init(jax.random.PRNGKey(0), jnp.zeros((1, 4, 3)))
    assert sum(a.size for a in jax.tree_util.tree_leaves(p)) == count_params(
        "mlp", 3, dim, 1, 2, mlp_dim
    )
    with pytest.raises(ValueError, match="narrowest"):
        matched_width("gru_attention", 10, 3, 1, 2)


def test_claim_recurrence_helps_on_a_real_series(tmp_path):
    """What holds at toy scale (README): on yearly sunspots (windows of 16), a recurrent,
    gated forecaster (GRU) beats the per-step MLP (no recurrence, no attention) by a wide
    margin and beats persistence. The paper's gating-vs-no-gating ranking on Lorenz-96 is
    within noise here (and flips at matched parameters), so it is not tested. Smaller than
    the launch setting (dim 16, 1 block, 100 steps), through the launcher's seed-study path
    (`launch.deconstructing.run_seed_study`: in memory, vmapped over seeds), for speed."""
    import lib.data
    from launch.deconstructing import run_seed_study
    from research.deconstructing.configs.forecast import get_config
    from research.deconstructing.model import data_name

    rel = {}
    for variant in ("gru", "mlp"):
        c = get_config(f"sunspots,{variant}")
        c.data.data_dir = str(tmp_path / "data")
        if not lib.data.registry.is_prepared(data_name(c), c.data.data_dir):
            try:  # from an installed statsmodels; fetching its wheel is the prepare command's job
                lib.data.prepare(data_name(c), c.data.data_dir)
            except RuntimeError as e:
                pytest.skip(f"{e}: {lib.data.prepare_command(data_name(c))}")
        c.model.dim, c.model.depth, c.train.num_steps = 16, 1, 100
        rows = run_seed_study(c, [0, 1])
        assert [r["seed"] for r in rows] == [0, 1] and rows[0]["variant"] == variant
        rel[variant] = (
            max(r["relative_mse"] for r in rows)
            if variant == "gru"
            else min(r["relative_mse"] for r in rows)
        )
    print(rel)
    # Worst GRU seed against the best MLP seed.
    assert rel["gru"] < 0.6 and rel["mlp"] > rel["gru"] + 0.2, rel
