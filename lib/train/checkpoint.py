"""Checkpoints with orbax's CheckpointManager: keep N, save on SIGTERM/SIGINT, resume, fall back.

A checkpoint holds the `TrainState` (params, optimizer state, step, RNG) and, as JSON, the data
iterator's position, so a resumed run sees the same batches and random numbers as one that was
never stopped. Orbax writes each step to a temporary directory and renames it when complete, so a
half-written save is never picked up; a finished one that turns out unreadable (disk error,
truncated file) is moved aside with a warning and the previous checkpoint is used instead.

Nothing here deletes a user's checkpoint (orbax's keep-N rotation aside): a checkpoint whose
shapes do not match the model stops the run (it is not corruption), a state with NaN or inf is
never saved, and a write that fails stops the run with the last complete step named.
"""

import base64
import json
import os
import shutil
import signal
import threading
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from lib.train import sharding as sharding_lib


class CheckpointWriteError(RuntimeError):
    """Writing a checkpoint failed (unwritable directory, full disk); the run must stop."""


class NonFiniteStateError(FloatingPointError):
    """The parameters or optimizer state hold NaN or inf; they are not saved."""


class CheckpointMismatchError(ValueError):
    """A stored checkpoint's arrays do not fit the model being trained (a changed config)."""


class Checkpointer:
    """Save and restore `(TrainState, data iterator position)` under `directory`.

    Args:
      directory: where step folders go (created if missing), e.g. `<workdir>/checkpoints`.
      keep: how many of the most recent checkpoints to keep.
      save_every: save when `step % save_every == 0` (0: only when forced).
      async_save: write in a background thread (arrays are copied off the device first).
    """

    def __init__(self, directory: str, *, keep: int = 3, save_every: int = 0, async_save=True):
        self.directory = os.path.abspath(directory)
        self.save_every = save_every
        # Orbax creates a step's directory in a background thread by default; when that fails
        # (an unwritable directory) its other writer threads wait ~20 minutes for it, and the
        # process hangs at exit. Created here, the failure raises at once in `save`.
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep,
            create=True,
            enable_async_checkpointing=async_save,
            async_options=ocp.options.AsyncOptions(create_directories_asynchronously=False),
        )
        handlers = {"state": ocp.StandardCheckpointHandler(), "extra": ocp.JsonCheckpointHandler()}
        self.manager = ocp.CheckpointManager(
            self.directory, item_names=("state", "extra"), item_handlers=handlers, options=options
        )
        self._last_step = None  # remembered by `close`

    def latest_step(self) -> int | None:
        """The newest finished checkpoint's step, or None (also after `close`)."""
        return self._last_step if self.manager is None else self.manager.latest_step()

    def should_save(self, step: int) -> bool:
        return bool(self.save_every) and step % self.save_every == 0

    def save(self, step: int, state, data_state=None, *, force: bool = False) -> bool:
        """Save `state` (and the iterator position) as `step` if due, or always with `force`.

        Returns:
          True if a save was started.

        Raises:
          NonFiniteStateError: `state` holds NaN or inf (nothing is written).
          CheckpointWriteError: this save or an earlier background one failed.
        """
        if not (force or self.should_save(step)) or step in self.manager.all_steps():
            return False
        self.check()
        if not all_finite((state.params, state.opt_state, state.model_state)):
            raise NonFiniteStateError(
                f"the parameters or optimizer state after step {step} hold NaN or inf; "
                "not saving them as a checkpoint"
            )
        extra = {"step": int(step), "data_state": encode_data_state(data_state)}
        if jax.process_count() > 1:  # orbax writes process 0's JSON: keep every process's
            extra["data_states"] = _gather_json(extra["data_state"])
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), extra=ocp.args.JsonSave(extra)
        )
        try:
            return bool(self.manager.save(step, args=args, force=True))
        except Exception as e:  # noqa: BLE001  (any failure to write stops the run)
            raise self._write_error(e, step) from e

    def check(self) -> None:
        """Raise `CheckpointWriteError` if a background save has failed (does not block)."""
        try:
            self.manager.check_for_errors()
        except Exception as e:  # noqa: BLE001
            raise self._write_error(e) from e

    def _write_error(self, e: Exception, step=None) -> CheckpointWriteError:
        last = self.manager.latest_step() if self.manager is not None else self._last_step
        which = f"checkpoint {step}" if step is not None else "a checkpoint"
        kept = f"step {last} is the last complete one" if last is not None else "none is complete"
        return CheckpointWriteError(
            f"writing {which} to {self.directory} failed ({type(e).__name__}: {str(e)[:300]}); "
            f"{kept}. Make the directory writable (or free space) and rerun to resume."
        )

    def restore(self, target):
        """Restore the newest readable checkpoint into the structure and shardings of `target`.

        Args:
          target: a `TrainState` (e.g. freshly initialized) giving the pytree structure, dtypes
            and shardings to restore into.

        Returns:
          `(state, data_state, step)`, or None when there is no readable checkpoint.

        Raises:
          CheckpointMismatchError: a readable checkpoint's arrays differ from `target`'s in
            names or shapes (the model changed); nothing is moved.
        """
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        for step in sorted(self.manager.all_steps(), reverse=True):
            self._check_shapes(step, target)
            try:
                args = ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()
                )
                restored = self.manager.restore(step, args=args)
                state = restored["state"]
                extra = restored["extra"]
                data_state = extra.get("data_state")
                per_process = extra.get("data_states")
                if per_process is not None and len(per_process) == jax.process_count():
                    data_state = per_process[jax.process_index()]
                return state, decode_data_state(data_state), int(extra["step"])
            except Exception as e:  # noqa: BLE001  (any failure to read means: try the previous)
                moved = self._move_aside(step)
                warnings.warn(
                    f"checkpoint at step {step} in {self.directory} could not be restored "
                    f"({type(e).__name__}: {str(e)[:300]}); moved it to {moved} and falling back "
                    "to the previous checkpoint",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return None

    def _check_shapes(self, step: int, target) -> None:
        """Raise `CheckpointMismatchError` if checkpoint `step`'s arrays differ from `target`'s.

        An unreadable metadata file says nothing (the restore that follows decides).
        """
        try:
            stored = _leaf_shapes(self.manager.item_metadata(step)["state"].tree)
        except Exception:  # noqa: BLE001
            return
        wanted = _leaf_shapes(target)
        diff = sorted(
            (k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k)),
            key=lambda k: (not k.startswith("params"), k),  # the parameters first
        )
        if diff:
            shown = ", ".join(f"{k}: {stored.get(k)} -> {wanted.get(k)}" for k in diff[:5])
            raise CheckpointMismatchError(
                f"checkpoint {step} in {self.directory} does not fit the model: {len(diff)} "
                f"array(s) differ (stored -> now), e.g. {shown}. The config changed since it was "
                "written: use a new workdir, or restore the old config to resume."
            )

    def _move_aside(self, step: int) -> str:
        """Move an unreadable step folder out of the manager's way (kept for inspection)."""
        self.manager.wait_until_finished()
        src = os.path.join(self.directory, str(step))
        dst = fresh_path(self.directory.rstrip("/") + f"_unreadable/{step}")
        if jax.process_index() == 0 and os.path.exists(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.move(src, dst)
        sharding_lib.sync_processes(f"checkpoint_move_aside_{step}")
        self.manager.reload()
        return dst

    def wait(self) -> None:
        """Block until background saves are on disk; `CheckpointWriteError` if one failed."""
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            raise self._write_error(e) from e

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait for background saves and release the manager (safe to call twice).

        Args:
          raise_errors: raise `CheckpointWriteError` if a save failed (after releasing);
            False while another exception is on its way up (the failure is warned about).
        """
        if self.manager is None:
            return
        error = None
        try:
            self.manager.wait_until_finished()
        except Exception as e:  # noqa: BLE001
            error = self._write_error(e)
        finally:
            self._last_step = self.manager.latest_step()
            try:
                self.manager.close()
            except Exception as e:  # noqa: BLE001
                error = error or self._write_error(e)
            self.manager = None
        if error is not None and raise_errors:
            raise error
        if error is not None:
            warnings.warn(str(error), RuntimeWarning, stacklevel=2)


@jax.jit
def _all_finite_device(tree):
    checks = [jnp.isfinite(x).all() for x in jax.tree_util.tree_leaves(tree)
              if jnp.issubdtype(x.dtype, jnp.inexact)]  # fmt: skip
    return jnp.stack(checks).all() if checks else jnp.array(True)


def all_finite(tree) -> bool:
    """True if every floating-point leaf of `tree` is finite (one reduction on the devices)."""
    out = _all_finite_device(tree)
    return bool(np.asarray(out.addressable_data(0)))  # replicated: every process has it


def _leaf_shapes(tree) -> dict:
    """`{"params/Dense_0/kernel": shape}` for the array leaves of a state or its metadata."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    out = {}
    for path, leaf in flat:
        if hasattr(leaf, "shape"):
            key = "/".join(str(getattr(p, "key", getattr(p, "name", getattr(p, "idx", p))))
                           for p in path)  # fmt: skip
            out[key] = tuple(leaf.shape)
    return out


def _gather_json(value) -> list:
    """Every process's JSON-safe `value`, in process order (a collective: all must call it)."""
    from jax.experimental import multihost_utils

    raw = np.frombuffer(json.dumps(value).encode(), np.uint8)
    sizes = np.asarray(multihost_utils.process_allgather(np.array([raw.size]))).reshape(-1)
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[: raw.size] = raw
    rows = np.asarray(multihost_utils.process_allgather(padded))
    return [json.loads(bytes(row[:n]).decode()) for row, n in zip(rows, sizes.tolist())]


def fresh_path(path: str) -> str:
    """`path` if nothing is there, else `path.1`, `path.2`, ...: the first free name."""
    candidate, n = path, 0
    while os.path.exists(candidate):
        n += 1
        candidate = f"{path}.{n}"
    return candidate


def encode_data_state(data_state):
    """Make an iterator position JSON-safe (bytes become base64)."""
    if isinstance(data_state, bytes | bytearray):
        return {"__bytes__": base64.b64encode(bytes(data_state)).decode("ascii")}
    return data_state


def decode_data_state(data_state):
    """Invert `encode_data_state`."""
    if isinstance(data_state, dict) and set(data_state) == {"__bytes__"}:
        return base64.b64decode(data_state["__bytes__"])
    return data_state


class StopSignal:
    """Catch SIGTERM and SIGINT while training: set a flag so the loop saves and exits cleanly.

    Use as a context manager; the previous handlers are restored on exit. A second SIGINT
    while stopping raises KeyboardInterrupt at once. Only installs handlers in the main thread.
    """

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signum

    def __bool__(self) -> bool:
        return self.received is not None

    def __exit__(self, *exc):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
        return False
