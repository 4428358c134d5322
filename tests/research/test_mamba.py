"""Mamba (Gu & Dao, 2023) project: task data, size matching, the fit loop, smoke runs."""

import jax
import numpy as np
import pytest

from lib.data.synthetic import solve_induction_heads, solve_selective_copying
from research.mamba import harness
from research.mamba.configs import induction_heads, selective_copying, shakespeare
from research.mamba.model import run


def test_synthetic_batches_are_the_lib_data_tasks():
    b = harness.task_builder("selective_copying", seq_len=32, num_tokens=4, vocab=6)
    batch = next(harness.synthetic_batches(b, "train", 5, seed=1))
    assert batch["inputs"].shape == (5, 36) and batch["mask"].sum() == 5 * 4
    for x, y in zip(batch["inputs"], batch["targets"]):
        np.testing.assert_array_equal(y[-4:], solve_selective_copying(x, 6))
    ind = harness.task_builder("induction_heads", seq_len=20, vocab=5)
    batch = next(harness.synthetic_batches(ind, "test", 3, seed=0))
    for x, y in zip(batch["inputs"], batch["targets"]):
        assert y[-1] == solve_induction_heads(x, trigger=6)
    with pytest.raises(ValueError, match="unknown task"):
        harness.task_builder("nope")


def test_dim_for_params_matches_sizes():
    counts = {}
    for mixer in ("mamba", "attention", "gru"):
        dim = harness.dim_for_params(mixer, 40_000, depth=1, vocab=32)
        counts[mixer] = harness.count_params(harness.make_model(mixer, dim, 1, 32))
    assert max(counts.values()) / min(counts.values()) < 1.2, counts


def test_fit_learns_a_constant_target():
    # Every target is token 3: a few AdamW steps must drive the loss well below log(vocab).
    # The fit loop does not depend on the mixer; attention compiles fastest.
    model = harness.make_model("attention", 16, 1, 8, {"num_heads": 2})

    def batches():
        rng = np.random.default_rng(0)
        while True:
            x = rng.integers(0, 8, (4, 12)).astype(np.int32)
            yield {"inputs": x, "targets": np.full_like(x, 3), "mask": np.ones(x.shape, np.float32)}

    params, info = harness.fit(model, batches(), steps=30, learning_rate=1e-2)
    res = harness.evaluate(model, params, batches(), 1)
    assert res["accuracy"] == 1.0 and res["loss"] < 0.5 * np.log(8), res
    assert info["params"] == harness.count_params(model)


@pytest.mark.slow
def test_smoke_config_runs():
    # The induction-heads experiment runs end to end in the claim test below.
    rows = run(selective_copying.get_config("smoke"))
    assert [r["mixer"] for r in rows] == ["mamba", "s4d"]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["test_accuracy"] <= 1 for r in rows)
    with pytest.raises(ValueError, match="smoke"):
        shakespeare.get_config("big")


@pytest.mark.slow
def test_claim_mamba_learns_induction_heads_and_extrapolates():
    # Paper, Table 2: Mamba solves induction heads and extrapolates far beyond its training
    # length. Tiny form: train at length 16 over 8 tokens (chance 12.5%), test at 16 and 64;
    # with lr 1e-2 Mamba leaves the chance plateau within ~150 steps (passes at 150 steps, both
    # lengths above 90%; 300 steps gave 100% at length 16).
    c = induction_heads.get_config()
    c.task_options = {"seq_len": 16, "vocab": 8}
    c.mixer_kwargs = {"mamba": {"state_dim": 8}}
    c.batch_size, c.steps, c.test_lengths, c.eval_examples = 32, 150, [16, 64], 256
    rows = run(c)
    print("induction heads, mamba:", rows)
    assert [r["length"] for r in rows] == [16, 64]
    assert all(r["accuracy"] > 0.9 for r in rows), rows


def _train_on_task(task, mixer, options, *, steps, batch=32, lr=1e-2, dim=32, depth=2, seed=0):
    """Train one small model on a `lib.data` task; its test loss and accuracy (256 examples)."""
    builder = harness.task_builder(task, **options)
    model = harness.make_model(mixer, dim, depth, harness.vocab_size(builder), {"state_dim": 8})
    train = harness.synthetic_batches(builder, "train", batch, seed)
    params, _ = harness.fit(model, train, steps=steps, learning_rate=lr, seed=seed)
    test = harness.synthetic_batches(builder, "test", 64, seed + 1)
    return harness.evaluate(model, params, test, 4)


@pytest.mark.slow
@pytest.mark.xla_optimized  # execution-bound: 2x faster compiled at level 2
def test_claim_selective_ssm_beats_lti_on_selective_copying():
    # Paper, Table 1: S6 (Mamba) 99.8% vs S4 18.3%. Tiny form: 16 positions + 4 tokens of 8
    # (chance 12.5%). Measured on the loaded CPU: Mamba 90.1%, S4D 77.7%; at 20 tokens an LTI
    # stack still places most tokens, so the gap asserted is modest (the 36-token config of
    # configs/selective_copying.py gives 97.6% vs 75.3%). 250 steps are too few (measured
    # Mamba 70.6%, S4D 63.2%), so this claim keeps its 500 steps.
    options = {"seq_len": 16, "num_tokens": 4, "vocab": 8}
    mamba = _train_on_task("selective_copying", "mamba", options, steps=500)
    s4d = _train_on_task("selective_copying", "s4d", options, steps=500)
    print("selective copying, mamba:", mamba, "s4d:", s4d)
    assert mamba["accuracy"] > 0.8, mamba
    assert mamba["accuracy"] > s4d["accuracy"] + 0.08, (mamba, s4d)


def test_fit_continues_from_init_params():
    """`harness.fit(init_params=...)` (the induction curriculum's second phase) starts from
    the given variables, not from `model.init`: with a negligible learning rate they come
    back unchanged, and without them the fit starts from the seed's init."""
    builder = harness.task_builder("induction_heads", seq_len=8, vocab=4)
    model = harness.make_model("gru", 8, 1, harness.vocab_size(builder))
    batches = harness.synthetic_batches(builder, "train", 2, 0)
    x = jax.numpy.zeros((1, 8), jax.numpy.int32)
    given = model.init(jax.random.key(5), x)
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)  # noqa: E731
    out, _ = harness.fit(model, batches, steps=1, learning_rate=1e-12, init_params=given)
    jax.tree.map(close, out, given)
    fresh, _ = harness.fit(model, batches, steps=1, learning_rate=1e-12, seed=0)
    jax.tree.map(close, fresh, model.init(jax.random.key(0), x))
    differ = [not np.allclose(a, b) for a, b in zip(jax.tree.leaves(fresh), jax.tree.leaves(given))]
    assert any(differ)  # two different inits, so the first check could fail
