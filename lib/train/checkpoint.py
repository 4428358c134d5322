"""Checkpoints with orbax's CheckpointManager: keep N, save on SIGTERM/SIGINT, resume, fall back.

A checkpoint holds the `TrainState` (params, optimizer state, step, RNG) and, as JSON, the data
iterator's position, so a resumed run sees the same batches and random numbers as one that was
never stopped. Orbax writes each step to a temporary directory and renames it when complete, so a
half-written save is never picked up; a finished one that turns out unreadable (disk error,
truncated file) is moved aside with a warning and the previous checkpoint is used instead.
"""

import base64
import os
import shutil
import signal
import threading
import warnings

import jax
import orbax.checkpoint as ocp


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
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=async_save
        )
        self.manager = ocp.CheckpointManager(
            self.directory, item_names=("state", "extra"), options=options
        )

    def latest_step(self) -> int | None:
        """The newest finished checkpoint's step, or None."""
        return self.manager.latest_step()

    def should_save(self, step: int) -> bool:
        return bool(self.save_every) and step % self.save_every == 0

    def save(self, step: int, state, data_state=None, *, force: bool = False) -> bool:
        """Save `state` (and the iterator position) as `step` if due, or always with `force`.

        Returns:
          True if a save was started.
        """
        if not (force or self.should_save(step)) or step in self.manager.all_steps():
            return False
        extra = {"step": int(step), "data_state": encode_data_state(data_state)}
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), extra=ocp.args.JsonSave(extra)
        )
        return bool(self.manager.save(step, args=args, force=True))

    def restore(self, target):
        """Restore the newest readable checkpoint into the structure and shardings of `target`.

        Args:
          target: a `TrainState` (e.g. freshly initialized) giving the pytree structure, dtypes
            and shardings to restore into.

        Returns:
          `(state, data_state, step)`, or None when there is no readable checkpoint.
        """
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                args = ocp.args.Composite(
                    state=ocp.args.StandardRestore(abstract), extra=ocp.args.JsonRestore()
                )
                restored = self.manager.restore(step, args=args)
                state = restored["state"]
                extra = restored["extra"]
                return state, decode_data_state(extra.get("data_state")), int(extra["step"])
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

    def _move_aside(self, step: int) -> str:
        """Move an unreadable step folder out of the manager's way (kept for inspection)."""
        self.manager.wait_until_finished()
        src = os.path.join(self.directory, str(step))
        dst = self.directory.rstrip("/") + f"_unreadable/{step}"
        if jax.process_index() == 0 and os.path.exists(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if os.path.exists(dst):
                shutil.rmtree(dst)
            shutil.move(src, dst)
        self.manager.reload()
        return dst

    def wait(self) -> None:
        """Block until background saves are on disk."""
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Wait for background saves and release the manager (safe to call twice)."""
        if self.manager is not None:
            self.manager.wait_until_finished()
            self.manager.close()
            self.manager = None


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
