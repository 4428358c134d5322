"""Batches of generated tasks drawn in memory, and stored windows cut to a shorter length.

A generated task (selective copying, induction heads, MQAR, copying, adding, ...) is a
`GeneratedBuilder` whose `example(rng, split)` draws one example; `lib.data.prepare` stores a
fixed number of them. Training on fresh examples every step needs no preparation at all:
`TaskBatches` draws them from the same generator, one numpy `Generator` per (seed, split), so
the stream is a pure function of the seed and its position, and it checkpoints its position
(`get_state` / `set_state`) for `lib.train.loop`. `finite_batches` gives the zero-argument
factory of a fixed evaluation set that the loop's `eval_data` / `test_data` expect.

  builder = task_builder("mqar", seq_len=64, num_pairs=8)
  train = TaskBatches(builder, "train", batch_size=32, seed=0)
  test = finite_batches(lambda: TaskBatches(builder, "test", 32, seed=0), 8)  # same 8 per call
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

from lib.data.base import SPLITS, GeneratedBuilder


def task_builder(name: str, **options) -> GeneratedBuilder:
    """The `lib.data` builder of a generated task, configured (options checked) but not prepared.

    Args:
      name: a registered generated data set ("selective_copying", "induction_heads", "mqar",
        "copying", "adding", ...; see `lib.data.list_datasets()`).
      **options: the builder's options (e.g. `seq_len=64`); see its `DEFAULTS`.

    Raises:
      ValueError: `name` is not registered, or is a stored (not generated) data set.
      TypeError: an option the builder does not have (its message lists the known ones).
    """
    from lib.data.registry import builder_class, list_datasets

    if name not in list_datasets():
        raise ValueError(f"unknown task {name!r}; expected one of {list_datasets()}")
    cls = builder_class(name)
    if not issubclass(cls, GeneratedBuilder):
        raise ValueError(f"{name!r} is a stored data set, not a generated task: use lib.data.load")
    # The data_dir is never written: examples are drawn in memory, nothing is prepared.
    return cls(data_dir=tempfile.gettempdir(), **options)


def vocab_size(builder: GeneratedBuilder) -> int:
    """The vocabulary size of a generated task (its metadata's `vocab_size`)."""
    return int(builder._metadata()["vocab_size"])


class TaskBatches:
    """Endless batches `{"inputs", "targets", "mask"}` (numpy, `[batch_size, length]`) of fresh
    examples of a generated task, resumable.

    Examples are drawn one after another from `np.random.default_rng([seed, split index])`,
    so a batch of 2k examples holds the same examples as two batches of k.

    Args:
      builder: a `GeneratedBuilder` (see `task_builder`).
      split: "train", "validation" or "test" (the builder may draw splits differently).
      batch_size: examples per batch.
      seed: the stream's seed.
    """

    def __init__(self, builder: GeneratedBuilder, split: str, batch_size: int, seed: int = 0):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.builder, self.split, self.batch_size = builder, split, batch_size
        self._rng = np.random.default_rng([seed, SPLITS.index(split)])

    def __iter__(self) -> TaskBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        examples = [self.builder.example(self._rng, self.split) for _ in range(self.batch_size)]
        return {k: np.stack([e[k] for e in examples]) for k in examples[0]}

    def get_state(self) -> str:
        """The position: the generator's state as JSON text."""
        return json.dumps(self._rng.bit_generator.state)

    def set_state(self, state: str) -> None:
        """Continue from a position returned by `get_state`."""
        self._rng.bit_generator.state = json.loads(state)


def finite_batches(make: Callable[[], Iterator], num_batches: int) -> Callable[[], Iterator]:
    """A zero-argument factory of the first `num_batches` batches of `make()`: the same
    batches on every call when `make` builds a fresh, seeded stream (e.g. a `TaskBatches`).

    Args:
      make: a zero-argument callable returning a fresh iterator.
      num_batches: how many batches each call yields (>= 1).
    """
    if num_batches < 1:
        raise ValueError(f"num_batches must be >= 1, got {num_batches}")
    return lambda: itertools.islice(make(), num_batches)


class Rechunk:
    """Cut every batch of stored windows of length `k * seq_len` into `k` sequences of
    `seq_len` (and keep the first `batch_size` of them, when given); the position methods
    `get_state` / `set_state` are forwarded, so the loop still checkpoints it.

    Args:
      it: an iterator of batches `{key: [b, k * seq_len, ...]}` (e.g. `lib.data.load`).
      seq_len: the length to cut to.
      batch_size: keep this many sequences per batch (default: all `b * k`).
    """

    def __init__(self, it, seq_len: int, batch_size: int | None = None):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        self.it, self.seq_len, self.batch_size = it, seq_len, batch_size

    def __iter__(self) -> Rechunk:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = next(self.it)
        length = batch["inputs"].shape[1]
        if length % self.seq_len:
            raise ValueError(f"stored length {length} is not a multiple of seq_len={self.seq_len}")
        cut = {k: v.reshape(-1, self.seq_len, *v.shape[2:]) for k, v in batch.items()}
        return {k: v[: self.batch_size] for k, v in cut.items()} if self.batch_size else cut

    def get_state(self):
        return self.it.get_state()

    def set_state(self, state) -> None:
        self.it.set_state(state)


def sequence_task(
    name: str,
    *,
    options=None,
    batch_size: int,
    seed: int = 0,
    eval_batches: int = 0,
    test_batches: int = 1,
    seq_len: int = 0,
    data_dir=None,
) -> dict:
    """Training, evaluation and test data of a sequence task, for `lib.train.loop`.

    A generated task (`task_builder(name, **options)`) is drawn in memory: fresh training
    batches every step, and fixed validation and test sets (the first batches of seeded
    streams). A stored data set (e.g. `shakespeare_char`, prepared with `python -m lib.data
    prepare NAME`) is read with `lib.data.load` (shuffled, endless) and, with `seq_len`, its
    stored windows are cut to that length; its evaluation sets are the first batches of the
    seeded, shuffled validation and test streams.

    Args:
      name: a registered data set.
      options: a generated task's builder options (must be empty for a stored set).
      batch_size: sequences per batch.
      seed: the streams' seed.
      eval_batches: validation batches per evaluation (0: no `eval_data`).
      test_batches: test batches (0: no `test_data`).
      seq_len: a stored set's sequence length (0: as stored; must divide it).
      data_dir: root of prepared data sets (None: the default).

    Returns:
      `{"train_data", "eval_data", "test_data", "vocab_size"}`: an iterator, two zero-argument
      factories (or None) and the vocabulary size.

    Raises:
      lib.data.DatasetNotPreparedError: a stored set is not prepared (with the command).
    """
    from lib.data.registry import builder_class, info, list_datasets

    if name not in list_datasets():
        raise ValueError(f"unknown data set {name!r}; expected one of {list_datasets()}")
    if issubclass(builder_class(name), GeneratedBuilder):
        builder = task_builder(name, **dict(options or {}))

        def stream(split):
            return lambda: TaskBatches(builder, split, batch_size, seed)

        vocab = vocab_size(builder)
    else:
        if options:
            raise ValueError(f"options {dict(options)} are for generated tasks; {name!r} is stored")
        from lib.data.pipeline import load

        meta = info(name, data_dir)  # raises with the prepare command when not prepared
        stored = int(meta["seq_len"])
        seq_len = seq_len or stored
        if stored % seq_len:
            raise ValueError(f"seq_len must divide the stored length {stored}, got {seq_len}")
        windows = max(batch_size // (stored // seq_len), 1)

        def stream(split):
            def make():
                loaded = load(name, split, batch_size=windows, seed=seed, data_dir=data_dir)
                return Rechunk(loaded, seq_len, batch_size)

            return make

        vocab = int(meta["vocab_size"])
    return {
        "train_data": stream("train")(),
        "eval_data": finite_batches(stream("validation"), eval_batches) if eval_batches else None,
        "test_data": finite_batches(stream("test"), test_batches) if test_batches else None,
        "vocab_size": vocab,
    }
