"""The training loop: sharded runs agree with one device, NaN stops, logs and evaluation."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from lib.train import sharding
from lib.train.loop import Trainer
from lib.train.metrics import read_metrics


def _losses(workdir):
    return np.array([r["loss"] for r in read_metrics(workdir, "train")])


@pytest.mark.slow
def test_one_device_and_eight_devices_give_the_same_losses(tmp_path):
    assert len(jax.devices()) == 8, "tests/conftest.py should simulate 8 CPU devices"
    meshes = {
        "one": sharding.make_mesh(devices=jax.devices()[:1]),
        "data8": sharding.make_mesh(data=8),
        "data4_fsdp2": sharding.make_mesh(data=4, fsdp=2),
    }
    runs = {}
    for name, mesh in meshes.items():
        workdir = str(tmp_path / name)
        runs[name] = tiny.run(workdir, 8, mesh=mesh, dim=64, checkpoint_every=0, evaluate=False)
        runs[name]["losses"] = _losses(workdir)
    assert len(runs["one"]["losses"]) == 8
    for name in ("data8", "data4_fsdp2"):
        np.testing.assert_allclose(runs[name]["losses"], runs["one"]["losses"], rtol=2e-5)


def test_fsdp_shards_parameters_and_optimizer_state():
    mesh = sharding.make_mesh(data=4, fsdp=2)
    trainer = Trainer(
        tiny.make_config(), model=tiny.TinyLM(64), loss_fn=tiny.loss_fn,
        init_batch=next(tiny.Batches()), mesh=mesh,
    )  # fmt: skip
    state = trainer.init_state()
    kernel = state.params["Dense_0"]["Dense_0"] if "Dense_0" in state.params["Dense_0"] else None
    kernel = state.params["Dense_0"]["kernel"] if kernel is None else kernel
    assert kernel.shape == (64, 64)
    assert "fsdp" in tuple(kernel.sharding.spec)
    assert kernel.addressable_shards[0].data.shape in ((32, 64), (64, 32))
    mu = state.opt_state
    specs = [x.sharding.spec for x in jax.tree_util.tree_leaves(mu) if getattr(x, "ndim", 0) == 2]
    assert any("fsdp" in tuple(s) for s in specs), "optimizer moments should be sharded too"
    # Small arrays (biases) stay replicated.
    assert tuple(state.params["Dense_0"]["bias"].sharding.spec) == ()


def test_fsdp_spec_picks_largest_divisible_axis():
    assert sharding.fsdp_spec((64, 4096), 8) == jax.sharding.PartitionSpec(None, "fsdp")
    assert sharding.fsdp_spec((4096, 3), 8) == jax.sharding.PartitionSpec("fsdp", None)
    assert sharding.fsdp_spec((129, 33), 8) == jax.sharding.PartitionSpec()
    assert sharding.fsdp_spec((4096,), 1) == jax.sharding.PartitionSpec()


def test_make_mesh_rejects_bad_shapes():
    with pytest.raises(ValueError, match="fsdp=3"):
        sharding.make_mesh(fsdp=3)
    with pytest.raises(ValueError, match="does not match"):
        sharding.make_mesh(data=3, fsdp=2)


def test_nan_loss_stops_with_the_step_named(tmp_path):
    class Poisoned(tiny.Batches):
        def __next__(self):
            batch = super().__next__()
            batch["poison"] = np.full((self.batch_size,), float(self.position == 5), np.float32)
            return batch

    def loss(params, batch, rng, *, model, train):
        value, metrics = tiny.loss_fn(params, batch, rng, model=model, train=train)
        value = value + jnp.where(jnp.max(batch["poison"]) > 0, jnp.nan, 0.0)
        return value, metrics

    with pytest.raises(FloatingPointError, match="at step 5"):
        tiny.run(
            str(tmp_path),
            12,
            loss=loss,
            data=Poisoned(),
            log_every=4,
            checkpoint_every=0,
            evaluate=False,
        )


def test_outputs_written(tmp_path):
    workdir = str(tmp_path)
    result = tiny.run(workdir, 6, log_every=2, eval_every=3, plot=True, checkpoint_every=0)
    rows = read_metrics(workdir)
    assert [r["step"] for r in rows if r["split"] == "train"] == [2, 4, 6]
    assert [r["step"] for r in rows if r["split"] == "eval"] == [3, 6]
    assert result["step"] == 6 and np.isfinite(result["eval_loss"])
    assert result["eval_count"] == 2 * 8 * tiny.LENGTH  # two eval batches, all tokens count
    for name in ("curves.png", "config.json", "final_metrics.json", "tensorboard"):
        assert os.path.exists(os.path.join(workdir, name)), name
    assert os.listdir(os.path.join(workdir, "tensorboard"))
    with open(os.path.join(workdir, "final_metrics.json")) as f:
        assert json.load(f)["step"] == 6
    # The loss goes down on this easy task.
    assert result["eval_loss"] < np.log(tiny.VOCAB)


def test_mutable_collections_are_carried_in_model_state(tmp_path):
    import flax.linen as nn

    from lib.train import losses

    class BNLM(nn.Module):
        @nn.compact
        def __call__(self, tokens, train: bool = False):
            h = nn.Embed(tiny.VOCAB, 8)(tokens)
            h = nn.BatchNorm(use_running_average=not train, momentum=0.5)(h)
            return nn.Dense(tiny.VOCAB)(h)

    def loss(params, batch, rng, *, model, train, model_state):
        variables = {"params": params, **model_state}
        if train:
            logits, new_state = model.apply(
                variables, batch["inputs"], True, mutable=["batch_stats"]
            )
        else:
            logits, new_state = model.apply(variables, batch["inputs"], False), model_state
        value, metrics = losses.lm_loss(logits, batch["targets"], batch["mask"])
        return value, (metrics, new_state)

    mesh = sharding.make_mesh(devices=jax.devices()[:1])
    from lib.train.loop import train_and_evaluate

    seen = {}
    result = train_and_evaluate(
        tiny.make_config(3, checkpoint_every=0),
        str(tmp_path),
        model=BNLM(),
        loss_fn=loss,
        train_data=tiny.Batches(),
        eval_data=lambda: tiny.Batches(seed=1, limit=1),
        mesh=mesh,
        on_end=lambda state, workdir: seen.update(stats=state.model_state["batch_stats"]),
    )
    assert np.isfinite(result["eval_loss"])
    mean = np.asarray(seen["stats"]["BatchNorm_0"]["mean"])
    assert mean.shape == (8,) and np.abs(mean).sum() > 0  # updated from the zero init
