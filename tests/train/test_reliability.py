"""No lost work, no silent garbage (issue 27): a changed config, a failed checkpoint write, an
error after training and a NaN each stop the run loudly, and every good checkpoint survives.

The two tests where the defect was a hang run the training in a child process with a timeout:
hanging is the failure there.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
import tiny

from lib.train import checkpoint as ckpt_lib
from lib.train import workdir as workdir_lib
from lib.train.loop import train_and_evaluate
from lib.train.metrics import read_metrics
from lib.train.sharding import make_mesh

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _run_dim(workdir, dim, num_steps=10, **train):
    """TinyLM whose width is a config key (`model.dim`), as in a project's config."""
    config = tiny.make_config(num_steps, checkpoint_every=5, **train)
    config.model.dim = dim
    return train_and_evaluate(
        config, workdir, model=tiny.TinyLM(dim), loss_fn=tiny.loss_fn,
        train_data=tiny.Batches(), mesh=make_mesh(devices=jax.devices()[:1]),
    )  # fmt: skip


def _snapshot(workdir):
    """Every file under `workdir` with its bytes (tensorboard events aside)."""
    out = {}
    for root, _, files in os.walk(workdir):
        for name in files:
            path = os.path.join(root, name)
            if "tensorboard" not in path:
                out[os.path.relpath(path, workdir)] = open(path, "rb").read()
    return out


def test_changed_config_stops_and_leaves_every_checkpoint(tmp_path):
    workdir = str(tmp_path / "run")
    _run_dim(workdir, 16)
    before = _snapshot(workdir)
    assert {"checkpoints/5", "checkpoints/10"} <= {os.path.dirname(k) for k in before}
    # Before the fix: the shape mismatch was taken for corruption, both checkpoints were moved
    # to checkpoints_unreadable/, metrics.jsonl truncated and training restarted at step 0.
    with pytest.raises(workdir_lib.ConfigChangedError, match=r"model\.dim: 16 -> 24.*start_over"):
        _run_dim(workdir, 24, num_steps=12)
    assert _snapshot(workdir) == before  # not one byte moved, deleted or rewritten

    # Without config.json (an older workdir) the checkpoint's shapes still stop it, untouched.
    stored_config = os.path.join(workdir, "config.json")
    os.rename(stored_config, stored_config + ".away")
    before = _snapshot(workdir)
    with pytest.raises(ckpt_lib.CheckpointMismatchError, match=r"params/Dense_0/bias: \(16,\)"):
        _run_dim(workdir, 24, num_steps=12)
    assert _snapshot(workdir) == before
    assert not os.path.exists(workdir + "/checkpoints_unreadable")

    # The explicit way out moves the old run aside, under a name never used before.
    os.rename(stored_config + ".away", stored_config)
    os.makedirs(os.path.join(workdir, "previous_run_1"))  # e.g. an earlier start-over
    result = _run_dim(workdir, 24, num_steps=5, start_over=True)
    assert result["step"] == 5
    moved = os.path.join(workdir, "previous_run_2")
    assert sorted(os.listdir(os.path.join(moved, "checkpoints"))) == ["10", "5"]
    assert [r["step"] for r in read_metrics(moved, "train")] == list(range(1, 11))
    assert [r["step"] for r in read_metrics(workdir, "train")] == list(range(1, 6))


def test_config_keys_that_may_change_on_resume():
    stored = tiny.make_config(10).to_dict()
    stored["model"] = {"dim": 16}
    same_run = json.loads(json.dumps(stored))
    same_run["train"].update(num_steps=100, log_every=7, checkpoint_every=3, progress_bar=True)
    same_run["mesh"].update(data=2, fsdp=4)
    assert workdir_lib.config_changes(stored, same_run) == {}
    other = json.loads(json.dumps(same_run))
    other["optimizer"]["learning_rate"] = 1.0
    other["seed"] = 3
    other["model"]["layers"] = 2  # a key the stored run did not have
    assert workdir_lib.config_changes(stored, other) == {
        "model.layers": ("<absent>", 2),
        "optimizer.learning_rate": (stored["optimizer"]["learning_rate"], 1.0),
        "seed": (0, 3),
    }


def test_unreadable_checkpoint_is_moved_aside_without_overwriting(tmp_path):
    """Before the fix `_move_aside` rmtree'd an existing destination."""
    directory = tmp_path / "checkpoints"
    (directory / "7").mkdir(parents=True)
    (directory / "7" / "new").write_text("the newer unreadable copy")
    (tmp_path / "checkpoints_unreadable" / "7").mkdir(parents=True)
    (tmp_path / "checkpoints_unreadable" / "7" / "old").write_text("moved aside earlier")
    checkpointer = ckpt_lib.Checkpointer(str(directory))
    moved = checkpointer._move_aside(7)
    checkpointer.close()
    assert moved.endswith("checkpoints_unreadable/7.1")
    assert (tmp_path / "checkpoints_unreadable" / "7" / "old").read_text() == "moved aside earlier"
    assert (tmp_path / "checkpoints_unreadable" / "7.1" / "new").exists()


@pytest.mark.parametrize(
    "key, value", [("log_every", 0), ("num_steps", -1), ("keep_checkpoints", 0)]
)
def test_bad_train_values_are_named(tmp_path, key, value):
    """Before the fix `log_every=0` raised ZeroDivisionError inside the loop."""
    with pytest.raises(ValueError, match=f"config.train.{key} must be an integer >= "):
        tiny.run(str(tmp_path), evaluate=False, **{"num_steps": 4, key: value})
    assert not os.path.exists(tmp_path / "checkpoints")


def test_nan_run_writes_only_finite_checkpoints(tmp_path):
    """The update of step 3 turns the parameters to NaN while its loss is still finite; before
    the fix checkpoint 3 was written from them and a rerun resumed the poison."""
    import jax.numpy as jnp

    class Poisoned(tiny.Batches):
        def __next__(self):
            batch = super().__next__()
            batch["poison"] = np.full((self.batch_size,), float(self.position == 3), np.float32)
            return batch

    def loss(params, batch, rng, *, model, train):
        value, metrics = tiny.loss_fn(params, batch, rng, model=model, train=train)
        poisoned = jnp.max(batch["poison"]) > 0
        zero = jnp.sum(params["Dense_1"]["bias"]) * 0.0  # 0, with a gradient through sqrt(0)
        safe = jnp.where(poisoned, zero, 1.0)
        return value + jnp.where(poisoned, jnp.sqrt(safe), 0.0), metrics  # NaN gradient only

    workdir = str(tmp_path)
    with pytest.raises(FloatingPointError, match="step 3") as err:
        tiny.run(workdir, 8, loss=loss, data=Poisoned(), checkpoint_every=1, evaluate=False)
    assert "last checkpoint, step 2" in str(err.value) and "resumes from it" in str(err.value)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    steps = sorted(int(s) for s in os.listdir(ckpt_dir) if s.isdigit())
    assert steps[-1] == 2
    for step in steps:
        state = ocp.StandardCheckpointer().restore(os.path.join(ckpt_dir, str(step), "state"))
        leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(state)]
        assert all(np.isfinite(x).all() for x in leaves if x.dtype.kind == "f"), step


def _child(tmp_path, mode, timeout=240):
    """Run `tests/train/tiny.py`-style training in a child process; returns (rc, output)."""
    script = tmp_path / "child.py"
    script.write_text(CHILD_SCRIPT.format(here=HERE))
    workdir = str(tmp_path / "run")
    cmd = [sys.executable, str(script), workdir, mode]
    if mode == "unwritable" and os.geteuid() == 0:  # root writes anywhere: drop that power
        cmd = [shutil.which("setpriv"), "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path.parent / "jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"the run hung (no exit within {timeout} s): {str(e.stdout)[-2000:]}")
    return proc.returncode, proc.stdout + proc.stderr, workdir


CHILD_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {here!r})
    import jax
    jax.config.update("jax_platforms", "cpu")
    import tiny

    workdir, mode = sys.argv[1], sys.argv[2]
    ckpt = os.path.join(workdir, "checkpoints")

    class Data(tiny.Batches):
        def __next__(self):
            batch = super().__next__()
            if mode == "unwritable" and self.position == 8:  # after checkpoint 5 is on disk
                while not os.path.isdir(os.path.join(ckpt, "5")):
                    time.sleep(0.05)
                os.chmod(ckpt, 0o555)
            return batch

    opened = []

    class FailsAtTheEnd(tiny.Batches):  # opens up front, fails on the final evaluation
        def __init__(self, *args, **kwargs):
            opened.append(1)
            if len(opened) > 1:
                raise ValueError("the validation split's disk went away")
            super().__init__(*args, **kwargs)

    tiny.Batches = FailsAtTheEnd if mode == "eval" else tiny.Batches  # eval data fails
    tiny.run(workdir, 12, data=Data(), checkpoint_every=5, evaluate=mode == "eval")
    """
)


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="running as root and setpriv (util-linux) is missing: cannot make a directory "
    "unwritable for the child process",
)
def test_failed_checkpoint_write_stops_without_hanging(tmp_path):
    rc, out, workdir = _child(tmp_path, "unwritable")
    os.chmod(os.path.join(workdir, "checkpoints"), 0o755)
    assert rc != 0, out
    assert "CheckpointWriteError" in out and "step 5 is the last complete one" in out, out
    assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["5"]
    result = tiny.run(workdir, 6, checkpoint_every=5, evaluate=False)  # the good one resumes
    assert result["step"] == 6
    assert [r["step"] for r in read_metrics(workdir, "train")] == list(range(1, 7))


def test_error_after_training_keeps_the_final_checkpoint(tmp_path):
    """The final evaluation fails (its data went away after the up-front check): before the
    fix the final checkpoint was left uncommitted by the exception."""
    rc, out, workdir = _child(tmp_path, "eval")
    assert rc != 0 and "disk went away" in out, out
    names = os.listdir(os.path.join(workdir, "checkpoints"))
    assert "12" in names and not [n for n in names if "tmp" in n], names


def test_a_missing_eval_split_fails_before_any_training(tmp_path):
    """A validation split that cannot be opened used to surface only after the last step."""
    from lib.data.registry import DatasetNotPreparedError
    from lib.train.loop import train_and_evaluate

    def missing_split():
        raise DatasetNotPreparedError("data set 'copying' has no split(s) ['validation']")

    drawn = []

    class Counting(tiny.Batches):
        def __next__(self):
            drawn.append(1)
            return super().__next__()

    with pytest.raises(DatasetNotPreparedError, match="validation"):
        train_and_evaluate(
            tiny.make_config(5), str(tmp_path), model=tiny.TinyLM(8), loss_fn=tiny.loss_fn,
            train_data=Counting(), eval_data={"main": missing_split},
        )  # fmt: skip
    assert drawn == []  # not one training batch was drawn
    assert not os.path.exists(tmp_path / "checkpoints")
