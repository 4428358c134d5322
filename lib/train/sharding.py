"""Device meshes and shardings: data parallelism plus FSDP (ZeRO-3: Rajbhandari et al., 2020).

The mesh has two axes, `('data', 'fsdp')`. Batches are split over both (every device sees a
different slice of the batch). Parameters and optimizer state are split over `fsdp` along
their largest axis that divides evenly, and replicated over `data`; XLA inserts the gathers.
With `fsdp=1` this is plain data parallelism. The same code runs on one CPU, 8 simulated CPU
devices and many hosts.
"""

import os

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXES = ("data", "fsdp")

_DISTRIBUTED_ENV = (
    "JAX_COORDINATOR_ADDRESS",
    "COORDINATOR_ADDRESS",
    "SLURM_JOB_ID",
    "OMPI_COMM_WORLD_SIZE",
    "TPU_WORKER_HOSTNAMES",
    "MEGASCALE_COORDINATOR_ADDRESS",
)


def maybe_initialize_distributed() -> bool:
    """Call `jax.distributed.initialize()` when a multi-host environment is detected.

    Detected through the usual variables: JAX_COORDINATOR_ADDRESS (with JAX_NUM_PROCESSES and
    JAX_PROCESS_ID, read by JAX itself), SLURM (srun with more than one task), Open MPI, or a
    multi-worker Cloud TPU VM. Safe to call more than once.

    Returns:
      True if JAX now runs in multi-process mode.
    """
    if jax.distributed.is_initialized():
        return True
    env = os.environ
    multi = False
    if env.get("JAX_COORDINATOR_ADDRESS") or env.get("COORDINATOR_ADDRESS"):
        multi = True
    elif int(env.get("SLURM_NTASKS", env.get("SLURM_NPROCS", "1")) or 1) > 1:
        multi = True
    elif int(env.get("OMPI_COMM_WORLD_SIZE", "1") or 1) > 1:
        multi = True
    elif len([h for h in env.get("TPU_WORKER_HOSTNAMES", "").split(",") if h]) > 1:
        multi = True
    if not multi:
        return False
    kwargs = {}
    if env.get("JAX_COORDINATOR_ADDRESS"):
        kwargs["coordinator_address"] = env["JAX_COORDINATOR_ADDRESS"]
        if "JAX_NUM_PROCESSES" in env:
            kwargs["num_processes"] = int(env["JAX_NUM_PROCESSES"])
        if "JAX_PROCESS_ID" in env:
            kwargs["process_id"] = int(env["JAX_PROCESS_ID"])
    _cpu_collectives()
    jax.distributed.initialize(**kwargs)
    return True


def _cpu_collectives() -> None:
    """Let CPU devices of several processes talk (gloo); older JAX defaulted to none."""
    try:
        if jax.config.jax_cpu_collectives_implementation in (None, "none"):
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except AttributeError:  # a JAX without the option
        pass


def make_mesh(data: int = -1, fsdp: int = 1, devices=None) -> Mesh:
    """A `Mesh` with axes `('data', 'fsdp')`.

    Args:
      data: size of the data-parallel axis; -1 takes all devices left after `fsdp`.
      fsdp: size of the axis that shards parameters and optimizer state.
      devices: the devices to use (default: all of `jax.devices()`), e.g. `jax.devices()[:1]`.

    Returns:
      A mesh of shape `(data, fsdp)`.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if fsdp < 1 or n % fsdp:
        raise ValueError(f"fsdp={fsdp} must be >= 1 and divide the number of devices ({n})")
    if data == -1:
        data = n // fsdp
    if data * fsdp != n:
        raise ValueError(
            f"mesh data={data} x fsdp={fsdp} = {data * fsdp} does not match {n} devices; "
            "use data=-1 to take the rest"
        )
    if len(devices) > 1 and jax.process_count() == 1:
        grid = np.array(devices).reshape(data, fsdp)
    else:
        grid = mesh_utils.create_device_mesh((data, fsdp), devices=devices)
    return Mesh(grid, DATA_AXES)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of a batch: the leading axis split over `data` and `fsdp`."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    """A sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, PartitionSpec())


def fsdp_spec(shape, fsdp_size: int, min_size: int = 2**10) -> PartitionSpec:
    """Shard the largest axis divisible by `fsdp_size`; small arrays stay replicated.

    Args:
      shape: the array's shape.
      fsdp_size: the size of the mesh's `fsdp` axis.
      min_size: arrays with fewer elements than this are replicated (not worth a gather).
    """
    if fsdp_size == 1 or not shape or int(np.prod(shape)) < min_size:
        return PartitionSpec()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % fsdp_size == 0:
            spec = [None] * len(shape)
            spec[axis] = "fsdp"
            return PartitionSpec(*spec)
    return PartitionSpec()


def state_shardings(mesh: Mesh, abstract_state, min_size: int = 2**10):
    """Shardings for every leaf of a (shape-only) pytree, e.g. from `jax.eval_shape`."""
    fsdp_size = mesh.shape["fsdp"]

    def one(leaf):
        shape = getattr(leaf, "shape", ())
        return NamedSharding(mesh, fsdp_spec(tuple(shape), fsdp_size, min_size))

    return jax.tree_util.tree_map(one, abstract_state)


def shard_batch(batch, sharding: NamedSharding):
    """Place a host batch (dict of numpy arrays, this process's share) onto the mesh.

    On one host this is `jax.device_put`; on many, each process passes its own slice and the
    result is the global array (`jax.make_array_from_process_local_data`).
    """
    n = sharding.mesh.devices.size // jax.process_count()

    def one(x):
        x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % n:
            raise ValueError(
                f"batch leading axis {x.shape[:1]} must divide evenly over the {n} local "
                "devices of the mesh (data x fsdp); change the batch size or the mesh"
            )
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree_util.tree_map(one, batch)


def sync_processes(name: str) -> None:
    """Wait until every process reaches this point (no-op on one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


class ProcessRows:
    """This process's rows of every batch of a global stream: many hosts, one-host batches.

    Every process reads the same global batches (e.g. `lib.data.load(..., shard_index=0,
    shard_count=1)`) and keeps rows `[i * b / n, (i + 1) * b / n)` (process `i` of `n`), the
    rows its devices hold in `batch_sharding`. A run on `n` hosts then trains on exactly the
    batches of a one-process run (the same losses), and every process is at the same position,
    so the one data state a checkpoint keeps fits them all. The price: each process reads the
    whole global batch (fine for data that is cheap to read; a sharded reader scales further).
    `get_state` / `set_state` are forwarded. On one process the batches pass unchanged.

    Args:
      batches: an iterator of global batches (dicts of arrays `[b, ...]`).
      index, count: this process and the number of processes (default: JAX's).
    """

    def __init__(self, batches, index: int | None = None, count: int | None = None):
        self._it = iter(batches)
        self.index = jax.process_index() if index is None else index
        self.count = jax.process_count() if count is None else count

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._it)
        if self.count == 1:
            return batch

        def rows(x):
            x = np.asarray(x)
            if x.ndim == 0 or x.shape[0] % self.count:
                raise ValueError(
                    f"global batch of {x.shape[:1]} rows does not split evenly over "
                    f"{self.count} processes; make the batch size a multiple of {self.count}"
                )
            size = x.shape[0] // self.count
            return x[self.index * size : (self.index + 1) * size]

        return jax.tree_util.tree_map(rows, batch)

    @property
    def resumable(self) -> bool:
        return hasattr(self._it, "get_state") and hasattr(self._it, "set_state")

    def get_state(self):
        return self._it.get_state()

    def set_state(self, state) -> None:
        self._it.set_state(state)
