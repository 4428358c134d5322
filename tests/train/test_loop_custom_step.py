"""`train_and_evaluate(make_train_step=..., make_eval_step=...)`: a project-supplied step that
makes several updates per batch (as HRM's deep supervision does) trains exactly like the default
step run on each batch that many times, and a supplied eval step's metrics are reported."""

import jax
import numpy as np
import tiny

from lib.train.loop import make_train_step as default_train_step
from lib.train.loop import train_and_evaluate
from lib.train.sharding import make_mesh

UPDATES = 2


def _twice(model, loss_fn, schedule):
    """Two default updates on the same batch inside one jitted step (`lax.scan`)."""
    one = default_train_step(model, loss_fn, schedule)

    def train_step(state, batch):
        def body(state, _):
            return one(state, batch)

        state, metrics = jax.lax.scan(body, state, None, length=UPDATES)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return train_step


class _Repeat(tiny.Batches):
    """Each batch of `tiny.Batches` `UPDATES` times in a row (resumable)."""

    def __next__(self):
        self.position += 1
        inner = tiny.Batches(self.batch_size, self.seed)
        inner.position = (self.position - 1) // UPDATES
        return next(inner)


def _counting_eval(model, loss_fn):
    def eval_step(state, batch):
        return state, {"examples": batch["inputs"].shape[0] * 1.0, "count": 1.0}

    return eval_step


def _train(workdir, steps, data, **kw):
    config = tiny.make_config(steps, checkpoint_every=0)
    config.optimizer.schedule = "constant"  # its horizon is in updates: keep it out of the test
    kept = []
    result = train_and_evaluate(
        config,
        str(workdir),
        model=tiny.TinyLM(16),
        loss_fn=tiny.loss_fn,
        train_data=data,
        eval_data=lambda: tiny.Batches(seed=1, limit=3),
        mesh=make_mesh(devices=jax.devices()[:1]),
        on_end=lambda state, _: kept.append(jax.device_get(state)) or {},
        **kw,
    )
    return result, kept[0]


def test_several_updates_per_step_equal_the_default_step_repeated(tmp_path):
    custom, s1 = _train(
        tmp_path / "custom",
        4,
        tiny.Batches(),
        make_train_step=_twice,
        make_eval_step=_counting_eval,
    )
    default, s2 = _train(tmp_path / "default", 4 * UPDATES, _Repeat())
    assert int(s1.step) == int(s2.step) == 4 * UPDATES  # one state.step per update
    for a, b in zip(jax.tree.leaves(s1.params), jax.tree.leaves(s2.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The supplied eval step ran on the 3 eval batches of 8; the default one reports a loss.
    assert custom["eval_examples"] == 8.0 and custom["eval_count"] == 3.0
    assert "eval_loss" not in custom and "eval_loss" in default
    assert custom["step"] == 4 and np.isfinite(custom["train_loss"])
