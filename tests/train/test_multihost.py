"""Many hosts for real: two processes on localhost joined by `jax.distributed` (CPU collectives
over gloo), 4 simulated devices each, run the same `python -m launch.train` command as one
process with 8 devices: the losses are equal, both write one checkpoint together, and a restart
of both resumes from it.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

import lib.data
from lib.train.metrics import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "research", "baselines", "configs", "copying.py") + ":gru,smoke"
TIMEOUT = 400  # seconds for one launch (both processes); a hang fails the test


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("multihost_data")
    lib.data.prepare(
        "copying", root, copy_len=3, lag=4, num_symbols=4, num_train=40, num_validation=8,
        num_test=8,
    )  # fmt: skip
    return str(root)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(workdir, num_steps, data_dir, cache, processes):
    """Run `launch.train` as `processes` processes sharing 8 CPU devices; their outputs."""
    cmd = [
        sys.executable, "-m", "launch.train", f"--config={CONFIG}", f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}", f"--config.train.num_steps={num_steps}",
        "--config.train.checkpoint_every=4", "--config.train.eval_every=0",
        "--config.data.evaluate_test=false", "--config.train.plot=false",
        "--config.train.progress_bar=false",
        "--config.optimizer.decay_steps=40",  # the schedule does not depend on num_steps
    ]  # fmt: skip
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=cache)
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    env["XLA_FLAGS"] = (
        f"--xla_force_host_platform_device_count={8 // processes} "
        "--xla_backend_optimization_level=0"
    )
    port = _free_port()
    procs = []
    for i in range(processes):
        if processes > 1:
            env = dict(env, JAX_COORDINATOR_ADDRESS=f"localhost:{port}")
            env.update(JAX_NUM_PROCESSES=str(processes), JAX_PROCESS_ID=str(i))
        procs.append(
            subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
        )
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=TIMEOUT)[0])
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
        pytest.fail(f"launch.train with {processes} processes hung (> {TIMEOUT} s)")
    for proc, out in zip(procs, outs):
        assert proc.returncode == 0, out[-4000:]
    return outs


def _losses(workdir, split):
    return {r["step"]: r["loss"] for r in read_metrics(workdir, split)}


@pytest.mark.slow
@pytest.mark.skipif(
    "jax_cpu_collectives_implementation" not in jax.config.values,
    reason=f"jax {jax.__version__} has no CPU collectives option (gloo): two CPU processes "
    "cannot run one computation",
)
def test_two_processes_train_like_one_and_resume_together(tmp_path, data_dir):
    cache = str(tmp_path / "jax_cache")
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    _launch(one, 6, data_dir, cache, processes=1)

    outs = _launch(two, 4, data_dir, cache, processes=2)
    assert "starting at step 0 of 4" in outs[0], outs[0][-2000:]  # process 0 reports
    assert sorted(os.listdir(os.path.join(two, "checkpoints"))) == ["4"]  # one, written by both
    with open(os.path.join(two, "checkpoints", "4", "extra", "metadata")) as f:
        extra = json.load(f)  # each process's data position (here the same global one)
    assert extra["data_states"] == [extra["data_state"]] * 2
    outs = _launch(two, 6, data_dir, cache, processes=2)  # a restart of both
    assert "resuming at step 4 of 6" in outs[0], outs[0][-2000:]
    # Process 1 resumed with it: otherwise the two would run different numbers of steps, and
    # their collectives would not match.
    assert all("train (step 6)" in out for out in outs), outs[1][-2000:]

    want, got = _losses(one, "train"), _losses(two, "train")
    assert sorted(got) == sorted(want) == [2, 4, 6]  # each logged step once, across the restart
    np.testing.assert_allclose([got[s] for s in (2, 4, 6)], [want[s] for s in (2, 4, 6)], rtol=1e-5)
    # Evaluation sees the same examples, counted once (not once per process).
    assert read_metrics(two, "eval")[-1]["count"] == read_metrics(one, "eval")[-1]["count"]
    np.testing.assert_allclose(_losses(two, "eval")[6], _losses(one, "eval")[6], rtol=1e-5)
