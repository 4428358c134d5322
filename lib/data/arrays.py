"""In-memory data sets: batches over arrays held in memory, with a saveable position.

Small projects train on sets that fit in memory (sklearn digits, permuted digits, an MNIST
subset, puzzles generated on the fly). `EpochBatches` serves them to `lib.train.loop` like
`lib.data.load` serves prepared sets: epochs of fresh permutations drawn from one seeded
generator (every example once per epoch, the classic recipe), while `ArrayBatches` samples
with replacement, fixed by the seed and the step, as `lib.train.fit` does (so a project's run
and its in-memory seed study draw the same kind of minibatches); both have `get_state()` /
`set_state()` so a resumed run reads the batches an uninterrupted run would have read.
`eval_batches` gives the loop finite evaluation batches padded to the device count (padding
has `weight` 0; `lib.train.losses.array_loss` averages with it). `load_arrays` reads a
prepared `lib.data` set into memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class EpochBatches:
    """Iterator of batches `{key: array[idx]}` over in-memory arrays of equal length.

    Epoch `e` visits the examples in the order of the `e`-th `permutation(n)` drawn from
    `np.random.default_rng(seed)` (shuffled) or in stored order, `batch_size` at a time. With
    `drop_remainder` the last `n % batch_size` examples of each epoch are skipped; otherwise
    the epoch ends with a smaller batch.

    Args:
      arrays: name -> array `[n, ...]` (all with the same first dimension `n`).
      batch_size: examples per batch: in `[1, n]` with `drop_remainder`, else any >= 1.
      seed: seeds the permutations.
      shuffle: a fresh permutation per epoch; False: stored order.
      num_epochs: passes over the data; None repeats forever.
      drop_remainder: skip the last incomplete batch of each epoch.
    """

    def __init__(
        self,
        arrays: dict[str, np.ndarray],
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        num_epochs: int | None = None,
        drop_remainder: bool = True,
    ):
        if not arrays:
            raise ValueError("arrays is empty")
        lengths = {k: len(v) for k, v in arrays.items()}
        n = next(iter(lengths.values()))
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays must have the same length, got {lengths}")
        if batch_size < 1 or (drop_remainder and batch_size > n):
            raise ValueError(
                f"batch_size must be in [1, {n}] (the number of examples), got {batch_size}"
            )
        if num_epochs is not None and num_epochs < 1:
            raise ValueError(f"num_epochs must be >= 1 or None, got {num_epochs}")
        self._arrays = arrays
        self._n, self._batch_size, self._seed = n, batch_size, seed
        self._shuffle, self._num_epochs, self._drop = shuffle, num_epochs, drop_remainder
        self._per_epoch = n // batch_size if drop_remainder else -(-n // batch_size)
        self._epoch, self._index = 0, 0
        self._rng = np.random.default_rng(seed)
        self._order = self._next_order()

    def _next_order(self) -> np.ndarray:
        return self._rng.permutation(self._n) if self._shuffle else np.arange(self._n)

    def __iter__(self):
        return self

    def __len__(self) -> int:
        """Batches per epoch."""
        return self._per_epoch

    def __next__(self) -> dict[str, np.ndarray]:
        if self._index == self._per_epoch:
            if self._num_epochs is not None and self._epoch + 1 >= self._num_epochs:
                raise StopIteration
            self._epoch, self._index = self._epoch + 1, 0
            self._order = self._next_order()
        idx = self._order[self._index * self._batch_size : (self._index + 1) * self._batch_size]
        self._index += 1
        return {k: v[idx] for k, v in self._arrays.items()}

    def get_state(self) -> bytes:
        """The position (epoch, batch within it) and the settings, as JSON bytes."""
        return json.dumps(
            {"epoch": self._epoch, "index": self._index, **self._signature()}
        ).encode()

    def set_state(self, state: bytes | str | dict[str, Any]) -> None:
        """Go to a position saved by `get_state` (under the same settings)."""
        if isinstance(state, bytes | str):
            state = json.loads(state)
        mismatched = {
            k: (state.get(k), v) for k, v in self._signature().items() if state.get(k) != v
        }
        if mismatched:
            raise ValueError(f"iterator state is from other settings (saved, now): {mismatched}")
        self._rng = np.random.default_rng(self._seed)
        for _ in range(int(state["epoch"]) + 1):  # replay the permutations up to that epoch
            self._order = self._next_order()
        self._epoch, self._index = int(state["epoch"]), int(state["index"])

    def _signature(self) -> dict:
        return {"n": self._n, "batch_size": self._batch_size, "seed": self._seed,
                "shuffle": self._shuffle, "drop_remainder": self._drop}  # fmt: skip


class ArrayBatches:
    """An endless, resumable iterator of minibatches `{"inputs": x[idx], "targets": y[idx]}`.

    Batch `i` (0-based) draws `batch_size` indices uniformly with replacement from
    `np.random.default_rng([seed, i])`, so the order depends only on the seed and the position
    (`get_state` / `set_state` hold the position). With `with_step`, the batch also holds
    `step: [batch_size]`, the batch's number repeated (for losses that change over training,
    e.g. a regulariser's warm-up; repeated per example so it shards like the data).

    Args:
      inputs, targets: arrays with the same first dimension `n`.
      batch_size: examples per batch.
      seed: the sampling seed.
    """

    def __init__(self, inputs, targets, batch_size: int, seed: int = 0, *, with_step=False):
        self.inputs, self.targets = np.asarray(inputs), np.asarray(targets)
        if len(self.inputs) != len(self.targets) or len(self.inputs) == 0:
            raise ValueError(
                f"inputs ({len(self.inputs)}) and targets ({len(self.targets)}) must be "
                "non-empty and of the same length"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed, self.with_step = batch_size, int(seed), with_step
        self.position = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict:
        rng = np.random.default_rng([self.seed, self.position])
        idx = rng.integers(0, len(self.inputs), self.batch_size)
        batch = {"inputs": self.inputs[idx], "targets": self.targets[idx]}
        if self.with_step:
            batch["step"] = np.full(self.batch_size, self.position, np.int32)
        self.position += 1
        return batch

    def get_state(self) -> bytes:
        return json.dumps({"position": self.position, "seed": self.seed}).encode()

    def set_state(self, state) -> None:
        state = json.loads(state)
        if state["seed"] != self.seed:
            raise ValueError(f"iterator state is from seed {state['seed']}, not {self.seed}")
        self.position = int(state["position"])


def eval_batches(inputs, targets, batch_size: int = 0) -> Callable:
    """A factory of finite iterators over `(inputs, targets)` in order, `batch_size` at a time
    (0: one batch of everything). A batch is padded to a multiple of the device count (so it
    shards) with copies of its first example of `weight` 0; real examples have `weight` 1
    (`array_loss` averages with these weights)."""
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    size = batch_size or len(inputs)

    def make():
        devices = jax.device_count()
        for i in range(0, len(inputs), size):
            x, y = inputs[i : i + size], targets[i : i + size]
            pad = -len(x) % devices
            weight = np.concatenate([np.ones(len(x)), np.zeros(pad)]).astype(np.float32)
            x = np.concatenate([x, np.repeat(x[:1], pad, 0)])
            y = np.concatenate([y, np.repeat(y[:1], pad, 0)])
            yield {"inputs": x, "targets": y, "weight": weight}

    return make


def load_arrays(name: str, split: str, *, limit: int = 0, data_dir=None, target_key="label"):
    """`(inputs float32 [n, ...], targets [n, ...])` of a prepared `lib.data` set (after its
    read-time transforms, e.g. images scaled to [0, 1], log-mel features), the first `limit`
    examples in stored order (0: all). Targets are `batch[target_key]`: int32 class labels
    for the default "label", float32 otherwise (e.g. "targets" of a forecasting set).

    Raises:
      DatasetNotPreparedError: the set is not prepared (the message gives the command).
      KeyError: the set has no `target_key`.
    """
    from lib.data.pipeline import data_source, load

    n = len(data_source(name, split, data_dir=data_dir))
    n = min(n, limit) if limit else n
    it = load(name, split, batch_size=n, shuffle=False, num_epochs=1, data_dir=data_dir,
              shard_index=0, shard_count=1)  # fmt: skip
    batch = next(iter(it))
    if target_key not in batch:
        raise KeyError(f"{name}/{split} has no {target_key!r}; its fields: {sorted(batch)}")
    dtype = np.int32 if target_key == "label" else np.float32
    return np.asarray(batch["inputs"], np.float32), np.asarray(batch[target_key], dtype)
