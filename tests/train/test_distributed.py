"""Multi-host detection: jax.distributed.initialize() is called exactly when the env says so."""

import jax
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
