"""Checkpoints: a real SIGTERM mid-run, resume, same losses step for step; corrupt fallback."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tiny

from lib.train.metrics import read_metrics

TINY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny.py")


def _train_losses(workdir):
    rows = read_metrics(workdir, "train")
    return {r["step"]: r["loss"] for r in rows}


@pytest.mark.slow
def test_sigterm_then_resume_matches_an_uninterrupted_run(tmp_path):
    steps = 30
    killed = str(tmp_path / "killed")
    # The resumed process reuses the first one's compiled steps (saves time, changes nothing).
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"))
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    proc = subprocess.Popen(
        [sys.executable, TINY, killed, str(steps), "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    deadline = time.time() + 60
    while len(read_metrics(killed, "train")) < 6:  # it has logged some steps
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline, "the training subprocess did not start logging"
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "stopped by SIGTERM" in out, out
    stopped_at = max(_train_losses(killed))
    assert 6 <= stopped_at < steps
    assert str(stopped_at) in os.listdir(os.path.join(killed, "checkpoints"))

    resumed = subprocess.run(
        [sys.executable, TINY, killed, str(steps)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming at step {stopped_at}" in resumed.stdout

    reference = str(tmp_path / "reference")
    tiny.run(reference, steps, evaluate=False)
    got, want = _train_losses(killed), _train_losses(reference)
    assert sorted(got) == list(range(1, steps + 1))  # every step logged exactly once
    np.testing.assert_allclose(
        [got[s] for s in range(1, steps + 1)], [want[s] for s in range(1, steps + 1)], rtol=1e-6
    )


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path):
    workdir = str(tmp_path)
    tiny.run(workdir, 12, checkpoint_every=5, evaluate=False)  # saves 5, 10 (async) and 12
    ckpt_dir = os.path.join(workdir, "checkpoints")
    assert {"5", "10", "12"} <= set(os.listdir(ckpt_dir))
    want = _train_losses(workdir)
    for root, _, files in os.walk(os.path.join(ckpt_dir, "12", "state")):
        for name in files:
            with open(os.path.join(root, name), "wb") as f:
                f.write(b"\x00garbage")
    with pytest.warns(RuntimeWarning, match="step 12 .* falling back"):
        result = tiny.run(workdir, 12, checkpoint_every=5, evaluate=False)
    assert result["step"] == 12
    assert os.path.isdir(os.path.join(workdir, "checkpoints_unreadable", "12"))
    got = _train_losses(workdir)
    assert sorted(got) == list(range(1, 13))  # steps 11 and 12 were redone and logged once
    # Checkpoint 10 was written in the background while training went on with donated
    # buffers: the steps redone from it reproduce the first run exactly.
    np.testing.assert_allclose([got[s] for s in (11, 12)], [want[s] for s in (11, 12)], rtol=1e-6)
