"""Input pipeline: tfds.data_source over array_record, ordered by a grain IndexSampler.

The order of examples is grain's `IndexSampler`: a pure function of (seed, epoch, shard), a
fresh permutation each epoch. Batches are read in bulk (`__getitems__` on the TFDS source),
which is several times faster than grain's per-record DataLoader on a CPU. The iterator's
position is its state: `get_state()` / `set_state()` save and restore it, so a resumed run
reads the same batches an uninterrupted run would have read.
"""

from __future__ import annotations

import json
from typing import Any

import grain.python as grain
import numpy as np

from lib.data import registry


def postprocess_fns(name: str):
    """The read-time transforms of `name`: its builder's, then its view's (if any)."""
    fns = [registry.builder_class(name).postprocess]
    view = registry.view_class(name)
    if view is not None:
        fns.append(view.postprocess)
    return fns


def data_source(name: str, split: str, *, data_dir=None):
    """The random-access source (`len`, `[i]`) of one split of a prepared data set.

    It yields the stored examples (before any read-time transform; see `load`).
    """
    import tensorflow_datasets as tfds

    registry.check_prepared(name, data_dir)
    splits = registry.info(name, data_dir)["splits"]
    if split not in splits:
        raise ValueError(f"data set {name!r} has no split {split!r}; splits: {sorted(splits)}")
    # `tfds.data_source(name)` would rebuild the features from the builder's default options;
    # reading them from the prepared folder honours the options it was prepared with.
    path = registry.version_dir(name, data_dir)
    source = tfds.builder_from_directory(str(path)).as_data_source(split=split)
    files = sorted(path.glob(f"{registry.storage_name(name)}-{split}.{registry.FILE_FORMAT}*"))
    return CheckedSource(source, files, registry.prepare_command(name, data_dir))


class CheckedSource:
    """A TFDS data source whose read errors name the files read and the command that rebuilds
    them (the array_record reader's "chunk data hash mismatch" names neither)."""

    def __init__(self, source, files, command: str):
        self._source, self._files, self._command = source, [str(f) for f in files], command

    def __len__(self) -> int:
        return len(self._source)

    def __getattr__(self, attr):
        return getattr(self._source, attr)

    def _read(self, fn, keys):
        try:
            return fn(keys)
        except (RuntimeError, OSError) as e:
            raise OSError(
                f"reading {', '.join(self._files)} failed ({e}); the prepared copy is damaged. "
                f"Rebuild it with:\n    {self._command} --overwrite"
            ) from e

    def __getitem__(self, key):
        return self._read(self._source.__getitem__, key)

    def __getitems__(self, keys):
        return self._read(self._source.__getitems__, keys)


class BatchIterator:
    """Iterator of batches (dicts of numpy arrays) with a saveable position.

    `get_state()` returns bytes (JSON) like grain's iterators; `set_state(state)` accepts
    those bytes, a str or a dict. The state records the sampler's settings, and restoring a
    state made under other settings raises ValueError.
    """

    def __init__(self, source, sampler, batch_size, drop_remainder, fns, metadata, signature):
        self._source = source
        self._sampler = sampler
        self._batch_size = batch_size
        self._drop_remainder = drop_remainder
        self._fns = fns
        self._metadata = metadata
        self._signature = signature
        self._position = 0

    def __iter__(self):
        return self

    def _keys(self, start: int, count: int) -> list[int]:
        keys = []
        for i in range(start, start + count):
            try:
                keys.append(int(self._sampler[i].record_key))
            except IndexError:  # The last epoch ended.
                break
        return keys

    def __next__(self) -> dict[str, np.ndarray]:
        keys = self._keys(self._position, self._batch_size)
        if not keys or (self._drop_remainder and len(keys) < self._batch_size):
            raise StopIteration
        self._position += len(keys)
        examples = []
        for example in self._source.__getitems__(keys):
            for fn in self._fns:
                example = fn(example, self._metadata)
            examples.append(example)
        batch = {k: np.stack([np.asarray(e[k]) for e in examples]) for k in examples[0]}
        # TFDS decodes some int32 scalars as int64; JAX works in int32.
        return {k: v.astype(np.int32) if v.dtype == np.int64 else v for k, v in batch.items()}

    def get_state(self) -> bytes:
        return json.dumps({"position": self._position, **self._signature}).encode()

    def set_state(self, state: bytes | str | dict[str, Any]) -> None:
        if isinstance(state, bytes | str):
            state = json.loads(state)
        mismatched = {k: (state.get(k), v) for k, v in self._signature.items() if state.get(k) != v}
        if mismatched:
            raise ValueError(f"iterator state is from other settings (saved, now): {mismatched}")
        self._position = int(state["position"])


def load(
    name: str,
    split: str,
    *,
    batch_size: int,
    seed: int = 0,
    shuffle: bool = True,
    num_epochs: int | None = None,
    data_dir=None,
    drop_remainder: bool = True,
    shard_index: int | None = None,
    shard_count: int | None = None,
) -> BatchIterator:
    """A resumable iterator of batches (dicts of numpy arrays) from a prepared data set.

    Args:
      name: registered data set name (a builder or a view, see `list_datasets()`).
      split: "train", "validation" or "test" (see `info(name)["splits"]`).
      batch_size: examples per batch (per process when sharded).
      seed: fixes the shuffling order of every epoch.
      shuffle: shuffle the examples each epoch (a fresh permutation per epoch).
      num_epochs: passes over the data; None repeats forever. Batches run across epoch
        boundaries; with a finite number the last batch may be partial (see drop_remainder).
      data_dir: root folder of prepared data sets.
      drop_remainder: drop a last incomplete batch.
      shard_index, shard_count: which slice of the data this process reads; default to
        `jax.process_index()` / `jax.process_count()` so each host reads its own part.

    Returns:
      A `BatchIterator`: `next(it)` gives a batch; `it.get_state()` / `it.set_state(state)`
      save and restore its position.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = data_source(name, split, data_dir=data_dir)
    if shard_index is None or shard_count is None:
        import jax

        shard_index, shard_count = jax.process_index(), jax.process_count()
    num_records = len(source)
    if drop_remainder and num_records // shard_count < batch_size:
        raise ValueError(
            f"{name}/{split} has {num_records} examples, fewer than one batch of {batch_size} "
            f"per shard ({shard_count} shards); lower batch_size or pass drop_remainder=False"
        )
    sampler = grain.IndexSampler(
        num_records=num_records,
        shard_options=grain.ShardOptions(shard_index, shard_count, drop_remainder=True),
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=seed,
    )
    signature = {
        "name": name,
        "split": split,
        "seed": seed,
        "shuffle": shuffle,
        "batch_size": batch_size,
        "shard": [shard_index, shard_count],
        "num_records": num_records,
    }
    metadata = registry.info(name, data_dir)
    return BatchIterator(
        source, sampler, batch_size, drop_remainder, postprocess_fns(name), metadata, signature
    )
