"""Mamba (Gu & Dao, 2023) project: task data, size matching, the fit loop, smoke runs."""

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
    model = harness.make_model("mamba", 16, 1, 8)

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
def test_smoke_configs_run():
    rows = run(selective_copying.get_config("smoke"))
    assert [r["mixer"] for r in rows] == ["mamba", "s4d"]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["test_accuracy"] <= 1 for r in rows)
    rows = run(induction_heads.get_config("smoke"))
    assert [r["length"] for r in rows] == [16, 64]
    with pytest.raises(ValueError, match="smoke"):
        shakespeare.get_config("big")
