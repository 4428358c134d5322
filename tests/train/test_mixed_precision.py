"""Mixed-precision training through `lib.train.loop.train_and_evaluate`: with
`config.train.compute_dtype="bfloat16"` three kinds of mixer (a gated RNN, a linear-attention
recurrence, softmax attention) train on the tiny next-token task, their loss curves track the
float32 runs, and the final parameters and optimizer state are float32.

Cost: six runs (3 mixers x 2 dtypes), compile-bound: about 35 s of CPU time in all (5-8 s a
run, measured on the 2-core machine at XLA level 0), hence the `slow` mark. Measured losses
(first -> mean of the last 5, fp32 / bf16): gru 2.78 -> 0.787 / 0.787, retnet 2.99 -> 0.844 /
0.852, attention 2.64 -> 0.937 / 0.937."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from lib.nn.precision import compute_dtype
from lib.nn.sequence_model import SequenceModel
from lib.train import losses
from lib.train.metrics import read_metrics
from lib.train.sharding import make_mesh

NUM_STEPS = 40
MIXERS = ("gru", "retnet", "attention")


def _loss_fn(params, batch, rng, *, model, train):
    del rng, train
    logits = model.apply({"params": params}, batch["inputs"])
    assert logits.dtype == jnp.float32  # the head returns float32 logits in bf16 too
    return losses.lm_loss(logits, batch["targets"], batch["mask"])


def _run(mixer, dtype_name, workdir):
    """Train a 1-block `SequenceModel` on the tiny task; returns (per-step train losses,
    dtypes of the final params, dtypes of the final optimizer state's float leaves)."""
    from lib.train.loop import train_and_evaluate

    config = tiny.make_config(NUM_STEPS, checkpoint_every=0, async_checkpointing=False)
    config.train.compute_dtype = dtype_name
    mixer_kwargs = {"max_len": tiny.LENGTH} if mixer == "attention" else None
    model = SequenceModel(
        dim=16, depth=1, mixer=mixer, mixer_kwargs=mixer_kwargs, vocab_size=tiny.VOCAB,
        mlp_hidden_dim=0, dtype=compute_dtype(config.train.compute_dtype),
    )  # fmt: skip
    seen = {}

    def on_end(state, _):
        seen["params"] = {x.dtype for x in jax.tree.leaves(state.params)}
        seen["opt"] = {
            x.dtype
            for x in jax.tree.leaves(state.opt_state)
            if jnp.issubdtype(x.dtype, jnp.floating)
        }

    train_and_evaluate(
        config, str(workdir), model=model, loss_fn=_loss_fn, train_data=tiny.Batches(),
        mesh=make_mesh(devices=jax.devices()[:1]), on_end=on_end,
    )  # fmt: skip
    rows = read_metrics(str(workdir), "train")
    return np.array([r["loss"] for r in rows]), seen["params"], seen["opt"]


@pytest.mark.slow
@pytest.mark.parametrize("mixer", MIXERS)
def test_bfloat16_training_tracks_float32(mixer, tmp_path):
    loss32, _, _ = _run(mixer, "float32", tmp_path / "fp32")
    loss16, params16, opt16 = _run(mixer, "bfloat16", tmp_path / "bf16")
    assert params16 == {jnp.dtype(jnp.float32)}
    assert opt16 == {jnp.dtype(jnp.float32)}
    assert np.isfinite(loss16).all()
    # it trains: the last losses are well below the first (log 11 = 2.4 at chance)
    assert loss16[-5:].mean() < 0.6 * loss16[:3].mean(), loss16
    # and tracks the float32 run, step by step and at the end
    assert np.abs(loss16 - loss32).max() < 0.1 * loss32[0], (loss16, loss32)
    assert abs(loss16[-5:].mean() - loss32[-5:].mean()) < 0.05 * loss32[-5:].mean()
