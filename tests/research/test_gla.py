"""Gated Linear Attention (Yang et al., 2023) project: recurrent, chunked and step forms of a
GLA model give the same outputs; MQAR smoke run; GLA learns a tiny MQAR."""

import numpy as np
import pytest

from launch.gla import run as launch_run
from research.gla.configs import mqar
from research.gla.model import form_outputs, run
from research.mamba import harness


def test_recurrent_chunked_and_step_forms_agree():
    # Length 37 is odd and crosses two chunk boundaries (chunk 16), so the chunked form pads.
    tokens = np.random.default_rng(37).integers(0, 16, (2, 37)).astype(np.int32)
    out = form_outputs(tokens, dim=32, depth=2, vocab=16, chunk_size=16)
    ref = np.asarray(out["recurrent"])
    assert ref.shape == (2, 37, 16) and np.isfinite(ref).all()
    assert np.abs(ref).max() > 0.1  # not trivially zero
    for form in ("chunked", "step"):
        np.testing.assert_allclose(out[form], ref, rtol=1e-4, atol=1e-4, err_msg=form)


def test_long_sequence_chunked_equals_recurrent_no_nan():
    # Slow decays over 2048 tokens, one sequence, tiny width: still equal, still finite.
    tokens = np.random.default_rng(0).integers(0, 8, (1, 2048)).astype(np.int32)
    out = form_outputs(
        tokens, dim=16, depth=1, vocab=8, chunk_size=64, num_heads=2,
        forms=("recurrent", "chunked"),
    )  # fmt: skip
    np.testing.assert_allclose(out["chunked"], out["recurrent"], rtol=1e-3, atol=1e-3)
    assert np.isfinite(np.asarray(out["chunked"])).all()


def test_unknown_experiment_and_form_are_errors():
    c = mqar.get_config("smoke")
    c.experiment = "induction"
    with pytest.raises(ValueError, match="unknown experiment"):
        run(c)
    with pytest.raises(ValueError, match="unknown forms"):
        form_outputs(np.zeros((1, 4), np.int32), forms=("parallel",))


@pytest.mark.slow
def test_mqar_smoke():
    c = mqar.get_config("smoke")
    # The launcher path is the same for every mixer (each adds compiles, not coverage: a table
    # of several mixers is run by test_mamba's smoke test through the same research harness).
    c.mixers = ("gla",)
    rows = launch_run(c)["synthetic"]
    assert [r["mixer"] for r in rows] == ["gla"]
    assert all(np.isfinite(r["train_loss"]) and 0 <= r["test_accuracy"] <= 1 for r in rows)


@pytest.mark.slow
@pytest.mark.xla_optimized  # execution-bound: 2x faster compiled at level 2
def test_claim_gla_learns_tiny_mqar():
    # GLA (sec. 5) recalls associations. Tiny MQAR: 4 key-value pairs in 32 tokens, 8 keys and
    # 8 values (chance 12.5%). Guessing among the sequence's 4 values (no binding) gives the
    # ~40% plateau, so 60% means it recalls by key. Gate temperature 1 instead of the paper's
    # 16 lets a layer learn the fast-forgetting head that binds a value to the key before it:
    # measured after 1000 steps at lr 3e-3, 95.3% with temperature 1 and 46.0% (plateau) with
    # 16; 16 needed 1500 steps for 80.8%. The paper's other half, GLA above RetNet's fixed
    # decay, does not show at this size (RetNet solves it faster, see the README), so it is
    # not asserted here.
    builder = harness.task_builder("mqar", seq_len=32, num_pairs=4, num_keys=8, num_values=8)
    kw = {"num_heads": 2, "gate_temperature": 1.0}
    model = harness.make_model("gla", 32, 2, harness.vocab_size(builder), kw)
    train = harness.synthetic_batches(builder, "train", 32, seed=0)
    params, _ = harness.fit(model, train, steps=1000, learning_rate=3e-3)
    res = harness.evaluate(model, params, harness.synthetic_batches(builder, "test", 64, 1), 4)
    print("tiny MQAR, gla:", res)
    assert res["accuracy"] > 0.6, res
