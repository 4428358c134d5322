"""The training loop's named evaluation sets and its warm start from another run (`init_from`)."""

import os

import jax
import numpy as np
import pytest
import tiny

from lib.train.loop import train_and_evaluate
from lib.train.metrics import read_metrics
from lib.train.sharding import make_mesh


def _train(workdir, num_steps=4, *, lr=None, **kwargs):
    config = tiny.make_config(num_steps, eval_every=2, checkpoint_every=0)
    if lr is not None:
        config.optimizer.learning_rate = lr
    kept = {}

    def on_end(state, workdir):
        kept["params"] = jax.device_get(state.params)
        return {"custom_metric": 7.0}

    result = train_and_evaluate(
        config, str(workdir), model=tiny.TinyLM(), loss_fn=tiny.loss_fn,
        train_data=tiny.Batches(), mesh=make_mesh(devices=jax.devices()[:1]), on_end=on_end,
        **kwargs,
    )  # fmt: skip
    return result, kept["params"]


def test_named_sets_are_evaluated_and_logged_under_their_names(tmp_path):
    two = lambda: tiny.Batches(seed=1, limit=2)  # noqa: E731
    three = lambda: tiny.Batches(seed=2, limit=3)  # noqa: E731
    result, _ = _train(tmp_path, eval_data={"a": two, "b": three}, test_data=two)
    # The same final state on the same batches gives the same numbers under either name.
    assert result["eval_a_loss"] == pytest.approx(result["test_loss"], rel=1e-6)
    assert result["eval_a_accuracy"] == pytest.approx(result["test_accuracy"], rel=1e-6)
    assert result["eval_b_loss"] != pytest.approx(result["eval_a_loss"], rel=1e-6)
    assert result["eval_a_count"] == 2 * 8 * tiny.LENGTH  # the tokens of 2 batches
    assert result["eval_b_count"] == 3 * 8 * tiny.LENGTH
    assert result["custom_metric"] == 7.0  # on_end's metrics join the final ones
    assert "eval_loss" not in result
    for split in ("eval_a", "eval_b"):  # periodic (step 2) and final (step 4)
        assert [r["step"] for r in read_metrics(str(tmp_path), split)] == [2, 4], split
    assert [r["step"] for r in read_metrics(str(tmp_path), "test")] == [4]


def test_bad_named_set_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="eval_data: a dict of named sets"):
        _train(tmp_path, eval_data={"a": tiny.Batches(seed=1, limit=2)})  # not a factory


def test_init_from_starts_from_the_other_runs_params(tmp_path):
    _, trained = _train(tmp_path / "first", num_steps=6)
    # A learning rate of 0: the second run's params stay where they started.
    _, warm = _train(tmp_path / "second", num_steps=2, lr=0.0, init_from=str(tmp_path / "first"))
    close = lambda a, b: np.testing.assert_allclose(a, b, rtol=0, atol=0)  # noqa: E731
    jax.tree.map(close, warm, trained)
    # The seed's own init (as `create_train_state` draws it) is not the trained params.
    params_rng, dropout_rng, _ = jax.random.split(jax.random.PRNGKey(0), 3)
    x = next(tiny.Batches())["inputs"][:2]
    cold = tiny.TinyLM().init({"params": params_rng, "dropout": dropout_rng}, x)["params"]
    differ = [
        not np.allclose(a, b) for a, b in zip(jax.tree.leaves(cold), jax.tree.leaves(trained))
    ]
    assert any(differ) and len(jax.tree.leaves(cold)) == len(jax.tree.leaves(trained))
    # Resuming the second run uses its own checkpoint: `init_from` is not read again.
    os.rename(tmp_path / "first", tmp_path / "gone")
    result, again = _train(tmp_path / "second", num_steps=2, lr=0.0, init_from=str(tmp_path / "first"))  # fmt: skip
    assert result["step"] == 2
    jax.tree.map(close, again, trained)


def test_init_from_without_checkpoints_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="init_from"):
        _train(tmp_path / "run", init_from=str(tmp_path / "nothing"))
