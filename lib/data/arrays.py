"""In-memory data sets: batches over arrays held in memory, with a saveable position.

Small projects train on sets that fit in memory (sklearn digits, permuted digits, an MNIST
subset, puzzles generated on the fly). `EpochBatches` serves them to `lib.train.loop` like
`lib.data.load` serves prepared sets: epochs of fresh permutations drawn from one seeded
generator (every example once per epoch, the classic recipe; `lib.train.arrays.ArrayBatches`
instead samples with replacement, as `lib.train.fit` does), and `get_state()` /
`set_state()` so a resumed run reads the batches an uninterrupted run would have read. `load_arrays` reads a prepared `lib.data` set into memory.
"""

from __future__ import annotations

import json
from typing import Any

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
