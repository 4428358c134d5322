"""Multi-host detection: jax.distributed.initialize() is called exactly when the env says so;
ProcessRows gives each process its rows of a global batch (the two-process run: test_multihost)."""

import jax
import numpy as np
import pytest

from lib.train import sharding

ENV = ["JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS", "SLURM_NTASKS", "SLURM_NPROCS",
       "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"]  # fmt: skip


@pytest.fixture
def calls(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    got = []
    monkeypatch.setattr(jax.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(jax.distributed, "initialize", lambda **kw: got.append(kw))
    return got


def test_single_host_does_not_initialize(calls, monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("TPU_WORKER_HOSTNAMES", "localhost")
    assert sharding.maybe_initialize_distributed() is False
    assert calls == []


@pytest.mark.parametrize(
    "env",
    [{"SLURM_NTASKS": "4"}, {"OMPI_COMM_WORLD_SIZE": "2"}, {"TPU_WORKER_HOSTNAMES": "a,b,c,d"}],
)
def test_cluster_environments_initialize_with_autodetection(calls, monkeypatch, env):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert sharding.maybe_initialize_distributed() is True
    assert calls == [{}]  # JAX reads the cluster's own variables


def test_explicit_coordinator(calls, monkeypatch):
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "host0:1234")
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    monkeypatch.setenv("JAX_PROCESS_ID", "1")
    assert sharding.maybe_initialize_distributed() is True
    assert calls == [{"coordinator_address": "host0:1234", "num_processes": 2, "process_id": 1}]


class _Stream:
    """Global batches `{"x": [8]}` numbered by position, with a saveable position."""

    def __init__(self):
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self):
        self.position += 1
        return {"x": np.arange(8) + 100 * self.position, "y": np.ones((8, 2))}

    def get_state(self):
        return {"position": self.position}

    def set_state(self, state):
        self.position = state["position"]


def test_process_rows_split_every_global_batch_in_process_order():
    shares = [sharding.ProcessRows(_Stream(), index=i, count=4) for i in range(4)]
    for _ in range(2):
        rows = [next(s) for s in shares]
        assert [r["y"].shape for r in rows] == [(2, 2)] * 4
        np.testing.assert_array_equal(
            np.concatenate([r["x"] for r in rows]), rows[0]["x"][0] + np.arange(8)
        )
    assert shares[0].resumable and shares[0].get_state() == {"position": 2}
    shares[0].set_state({"position": 0})
    np.testing.assert_array_equal(next(shares[0])["x"], [100, 101])


def test_process_rows_reject_a_batch_that_does_not_split():
    with pytest.raises(ValueError, match="multiple of 3"):
        next(sharding.ProcessRows(_Stream(), index=0, count=3))
    one = sharding.ProcessRows(_Stream())  # one process: batches pass unchanged
    assert next(one)["x"].shape == (8,)
