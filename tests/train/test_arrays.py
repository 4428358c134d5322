"""lib.data.arrays: resumable in-memory batches, padded evaluation, the fit loss on the loop."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from lib.data.arrays import ArrayBatches, eval_batches
from lib.train.fit import accuracy, mean_squared_error, softmax_cross_entropy
from lib.train.losses import array_loss


def test_batches_resume_at_any_position():
    x, y = np.arange(40.0).reshape(20, 2), np.arange(20)
    it = ArrayBatches(x, y, 6, seed=3, with_step=True)
    first = [next(it) for _ in range(5)]
    state = ArrayBatches(x, y, 6, seed=3)
    for _ in range(2):
        next(state)
    resumed = ArrayBatches(x, y, 6, seed=3, with_step=True)
    resumed.set_state(state.get_state())
    for want in first[2:]:
        got = next(resumed)
        np.testing.assert_array_equal(got["inputs"], want["inputs"])
        np.testing.assert_array_equal(got["targets"], want["targets"])
    np.testing.assert_array_equal(first[4]["step"], np.full(6, 4))
    np.testing.assert_array_equal(first[0]["inputs"][:, 0] / 2, first[0]["targets"])  # pairs kept
    with pytest.raises(ValueError, match="seed"):
        ArrayBatches(x, y, 6, seed=4).set_state(state.get_state())
    with pytest.raises(ValueError, match="same length"):
        ArrayBatches(x, y[:3], 6)


class Linear(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(3)(x)


@pytest.mark.parametrize("batch_size", [0, 5])
def test_padded_weighted_evaluation_equals_the_plain_mean(batch_size):
    """Eval batches padded to the device count with weight-0 rows: the count-weighted mean
    over batches (as the loop takes it) equals the loss and accuracy over the 13 examples,
    computed in numpy."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(13, 4)).astype(np.float32), rng.integers(0, 3, 13)
    model = Linear()
    params = model.init(jax.random.key(0), x)["params"]
    fn = array_loss(softmax_cross_entropy, metrics=accuracy, train_flag=False)
    total, sums = 0.0, np.zeros(2)
    for batch in eval_batches(x, y, batch_size)():
        assert len(batch["inputs"]) % jax.device_count() == 0
        loss, m = fn(params, batch, jax.random.key(1), model=model, train=False)
        total += float(m["count"])
        sums += float(m["count"]) * np.array([float(loss), float(m["accuracy"])])
    logits = np.asarray(model.apply({"params": params}, x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    assert total == 13
    np.testing.assert_allclose(sums / total, [-logp[np.arange(13), y].mean(),
                                              (logits.argmax(-1) == y).mean()], rtol=1e-5)  # fmt: skip


def test_extra_loss_reads_the_batch_step():
    x = np.ones((4, 2), np.float32)
    model = Linear()
    params = model.init(jax.random.key(0), x)["params"]
    fn = array_loss(lambda o, t: mean_squared_error(o, t), metrics=None, train_flag=False,
                    extra_loss=lambda p, step: step * 1.0)  # fmt: skip
    batch = {"inputs": x, "targets": np.zeros((4, 3), np.float32), "step": np.full(4, 7)}
    loss, m = fn(params, batch, jax.random.key(1), model=model, train=True)
    assert float(m["extra_loss"]) == 7.0
    assert float(loss) == pytest.approx(float(m["data_loss"]) + 7.0)
