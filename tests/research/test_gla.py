"""Gated Linear Attention (Yang et al., 2023) project: recurrent, chunked and step forms of a
GLA model give the same outputs; the MQAR study launcher (smoke, one training path); GLA
learns a tiny MQAR."""

import os

import jax
import numpy as np
import pytest

import launch.gla
from lib.train.config import load_config
from lib.train.loop import train_and_evaluate
from lib.train.sharding import make_mesh
from research.gla import model as gla
from research.gla.configs import mqar, shakespeare
from research.gla.model import form_outputs

CONFIGS = os.path.join(os.path.dirname(gla.__file__), "configs")
OUTPUTS = ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json")


@pytest.mark.claim
def test_recurrent_chunked_and_step_forms_agree():
    # Length 37 is odd and crosses two chunk boundaries (chunk 16), so the chunked form pads.
    tokens = np.random.default_rng(37).integers(0, 16, (2, 37)).astype(np.int32)
    out = form_outputs(tokens, dim=32, depth=2, vocab=16, chunk_size=16)
    ref = np.asarray(out["recurrent"])
    assert ref.shape == (2, 37, 16) and np.isfinite(ref).all()
    assert np.abs(ref).max() > 0.1  # not trivially zero
    for form in ("chunked", "step"):
        np.testing.assert_allclose(out[form], ref, rtol=1e-4, atol=1e-4, err_msg=form)


@pytest.mark.claim
def test_long_sequence_chunked_equals_recurrent_no_nan():
    # Slow decays over 2048 tokens, one sequence, tiny width: still equal, still finite.
    tokens = np.random.default_rng(0).integers(0, 8, (1, 2048)).astype(np.int32)
    out = form_outputs(
        tokens, dim=16, depth=1, vocab=8, chunk_size=64, num_heads=2,
        forms=("recurrent", "chunked"),
    )  # fmt: skip
    np.testing.assert_allclose(out["chunked"], out["recurrent"], rtol=1e-3, atol=1e-3)
    assert np.isfinite(np.asarray(out["chunked"])).all()


def test_config_args_and_form_errors():
    for name in ("mqar", "shakespeare"):
        c = load_config(os.path.join(CONFIGS, f"{name}.py") + ":smoke")
        assert c.project == "gla" and c.train.num_steps == 3
    c = mqar.get_config()
    assert (c.optimizer.warmup_steps, c.optimizer.end_learning_rate_factor) == (200, 0.1)
    with pytest.raises(ValueError, match="smoke"):
        shakespeare.get_config("big")
    with pytest.raises(ValueError, match="unknown forms"):
        form_outputs(np.zeros((1, 4), np.int32), forms=("parallel",))


@pytest.mark.claim
@pytest.mark.slow
def test_mqar_smoke_study(tmp_path):
    """`launch.gla` through `launch.train.run` (one mixer: the path is the same for every
    mixer; each adds compiles, not coverage), with every output of the one training path."""
    c = load_config(os.path.join(CONFIGS, "mqar.py") + ":smoke", ['study.mixers=("gla",)'])
    rows = launch.gla.run(c, str(tmp_path))
    assert [r["variant"] for r in rows] == ["gla"]
    assert np.isfinite(rows[0]["train_loss"]) and 0 <= rows[0]["test_accuracy"] <= 1
    for out in OUTPUTS:
        assert os.path.exists(tmp_path / "gla" / out), out
    assert os.path.exists(tmp_path / "results.json")


@pytest.mark.claim
@pytest.mark.slow
@pytest.mark.xla_optimized  # execution-bound: 2x faster compiled at level 2
def test_claim_gla_learns_tiny_mqar(tmp_path):
    # GLA (sec. 5) recalls associations. Tiny MQAR: 4 key-value pairs in 32 tokens, 8 keys and
    # 8 values (chance 12.5%). Guessing among the sequence's 4 values (no binding) gives the
    # ~40% plateau, so 60% means it recalls by key. Gate temperature 1 instead of the paper's
    # 16 lets a layer learn the fast-forgetting head that binds a value to the key before it:
    # measured with the old trainer after 1000 steps at lr 3e-3, 95.3% with temperature 1 and
    # 46.0% (plateau) with 16; 16 needed 1500 steps for 80.8%; through the shared path with
    # temperature 1: 97.2%. The paper's other half, GLA
    # above RetNet's fixed decay, does not show at this size (RetNet solves it faster, see the
    # README), so it is not asserted here.
    c = mqar.get_config()
    c.data.options = {"seq_len": 32, "num_pairs": 4, "num_keys": 8, "num_values": 8}
    c.model.mixer_kwargs = {"gla": {"num_heads": 2, "gate_temperature": 1.0}}
    c.data.batch_size, c.data.eval_batches, c.train.num_steps = 32, 0, 1000
    c.train.plot, c.train.progress_bar, c.train.checkpoint_every = False, False, 0
    parts = gla.build(c)
    mesh = make_mesh(devices=jax.devices()[:1])
    result = train_and_evaluate(c, str(tmp_path), mesh=mesh, **parts)
    print("tiny MQAR, gla:", result)
    assert result["test_count"] == 8 * 32 * 4  # 8 batches of 32 sequences, 4 queries each
    assert result["test_accuracy"] > 0.6, result
