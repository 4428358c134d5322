"""Input pipeline: tfds.data_source over array_record, shuffled and batched by grain.

The order of examples is a pure function of (seed, epoch); the iterator's position can be
saved with `get_state()` and restored with `set_state()`, so a resumed run reads the same
batches an uninterrupted run would have read.
"""

from __future__ import annotations

from typing import Any

import grain.python as grain
import numpy as np

from lib.data import registry


class _Postprocess(grain.MapTransform):
    """Applies a builder's `postprocess(example, metadata)` at read time."""

    def __init__(self, fn, metadata: dict[str, Any]):
        self._fn = fn
        self._metadata = metadata

    def map(self, element):
        return self._fn(element, self._metadata)


def _stack(examples):
    return {k: np.stack([np.asarray(e[k]) for e in examples]) for k in examples[0]}


def data_source(name: str, split: str, *, data_dir=None):
    """The random-access source (`len`, `[i]`) of one split of a prepared data set."""
    import tensorflow_datasets as tfds

    registry.check_prepared(name, data_dir)
    splits = registry.info(name, data_dir)["splits"]
    if split not in splits:
        raise ValueError(f"data set {name!r} has no split {split!r}; splits: {sorted(splits)}")
    # `tfds.data_source(name)` would rebuild the features from the builder's default options;
    # reading them from the prepared folder honours the options it was prepared with.
    path = registry.resolve_data_dir(data_dir) / name / str(registry.builder_class(name).VERSION)
    return tfds.builder_from_directory(str(path)).as_data_source(split=split)


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
):
    """A resumable iterator of batches (dicts of numpy arrays) from a prepared data set.

    Args:
      name: registered data set name.
      split: "train", "validation" or "test" (see `info(name)["splits"]`).
      batch_size: examples per batch (per process when sharded).
      seed: fixes the shuffling order of every epoch.
      shuffle: shuffle the examples each epoch (a fresh permutation per epoch).
      num_epochs: passes over the data; None repeats forever.
      data_dir: root folder of prepared data sets.
      drop_remainder: drop the last incomplete batch.
      shard_index, shard_count: which slice of the data this process reads; default to
        `jax.process_index()` / `jax.process_count()` so each host reads its own part.

    Returns:
      A grain `DataLoaderIterator`: `next(it)` gives a batch; `it.get_state()` /
      `it.set_state(state)` save and restore its position.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    source = data_source(name, split, data_dir=data_dir)
    if shard_index is None or shard_count is None:
        import jax

        shard_index, shard_count = jax.process_index(), jax.process_count()
    shard = grain.ShardOptions(shard_index, shard_count, drop_remainder=True)
    num_records = len(source)
    if drop_remainder and num_records // shard_count < batch_size:
        raise ValueError(
            f"{name}/{split} has {num_records} examples, fewer than one batch of {batch_size} "
            f"per shard ({shard_count} shards); lower batch_size or pass drop_remainder=False"
        )
    sampler = grain.IndexSampler(
        num_records=num_records,
        shard_options=shard,
        shuffle=shuffle,
        num_epochs=num_epochs,
        seed=seed,
    )
    cls = registry.builder_class(name)
    metadata = registry.info(name, data_dir)
    operations = [
        _Postprocess(cls.postprocess, metadata),
        grain.Batch(batch_size, drop_remainder=drop_remainder, batch_fn=_stack),
    ]
    loader = grain.DataLoader(
        data_source=source, sampler=sampler, operations=operations, worker_count=0
    )
    return iter(loader)
