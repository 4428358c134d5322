"""Long character sequences for HMT from a prepared lib.data text corpus (kjv_char, austen_char).

The corpora are stored as windows of `seq_len + 1` tokens every `stride` tokens, in text order
(record i is window i). `token_stream` stitches them back into one token array per split, so a
run can cut sequences of any length (here several segments long) without re-preparing the data:

- training: `RandomSequences`, sequences of `length + 1` tokens at random offsets, a pure
  function of (seed, step) and therefore resumable (`get_state` / `set_state`);
- evaluation: `contiguous_sequences`, consecutive non-overlapping sequences from the start of
  the split, the same for every model.
"""

from __future__ import annotations

import functools
import json

import jax
import numpy as np

from lib.data import pipeline, registry


@functools.lru_cache(maxsize=8)
def token_stream(name: str, split: str, data_dir: str | None = None) -> np.ndarray:
    """The split's tokens (int32 `[n]`) in text order, rebuilt from the stored windows."""
    meta = registry.info(name, data_dir)
    if meta.get("task") != "language_model":
        raise ValueError(f"{name!r} is not a language-model corpus (task={meta.get('task')!r})")
    seq_len = int(meta["seq_len"])
    stride = int(meta.get("config", {}).get("stride") or seq_len)
    if stride > seq_len:
        raise ValueError(f"{name!r} windows leave gaps (stride {stride} > seq_len {seq_len})")
    source = pipeline.data_source(name, split, data_dir=data_dir)
    windows = np.stack(
        [np.asarray(e["tokens"]) for e in source.__getitems__(list(range(len(source))))]
    )
    if len(windows) > 1 and not np.array_equal(windows[:-1, stride], windows[1:, 0]):
        raise ValueError(f"{name!r}/{split}: stored windows are not consecutive text")
    stream = np.concatenate([windows[:, :stride].reshape(-1), windows[-1, stride:]])
    return stream.astype(np.int32)


def _example(stream, starts, length):
    idx = np.asarray(starts)[:, None] + np.arange(length + 1)[None]
    tokens = stream[idx]
    return {
        "inputs": tokens[:, :-1],
        "targets": tokens[:, 1:],
        "mask": np.ones((len(starts), length), np.float32),
    }


class RandomSequences:
    """Endless batches of `length`-token sequences at uniformly random offsets.

    Batch `step` is a pure function of `(seed, step)`; with several processes each takes its
    slice of the global batch. `get_state` / `set_state` save and restore the step.
    """

    def __init__(self, stream, length: int, batch_size: int, seed: int = 0):
        if len(stream) <= length + 1:
            raise ValueError(f"the split has {len(stream)} tokens, too few for length {length}")
        if batch_size % jax.process_count():
            raise ValueError(
                f"batch_size {batch_size} must divide over {jax.process_count()} processes"
            )
        self.stream, self.length, self.batch_size, self.seed = stream, length, batch_size, seed
        self.step = 0

    def __iter__(self):
        return self

    def __next__(self):
        rng = np.random.default_rng([self.seed, self.step])
        starts = rng.integers(0, len(self.stream) - self.length - 1, self.batch_size)
        per = self.batch_size // jax.process_count()
        starts = starts[jax.process_index() * per : (jax.process_index() + 1) * per]
        self.step += 1
        return _example(self.stream, starts, self.length)

    def get_state(self) -> bytes:
        return json.dumps({"step": self.step, "seed": self.seed, "length": self.length}).encode()

    def set_state(self, state) -> None:
        state = json.loads(state) if isinstance(state, bytes | str) else state
        if (state["seed"], state["length"]) != (self.seed, self.length):
            raise ValueError(f"iterator state from other settings: {state}")
        self.step = int(state["step"])


def contiguous_sequences(stream, length: int, batch_size: int, max_batches: int = 0):
    """Batches of consecutive non-overlapping `length`-token sequences from the split's start
    (this process's share of each global batch); at most `max_batches` (0: all full batches)."""
    num = (len(stream) - 1) // length // batch_size
    num = min(num, max_batches) if max_batches else num
    per = batch_size // jax.process_count()
    for i in range(num):
        starts = (i * batch_size + np.arange(batch_size)) * length
        yield _example(
            stream, starts[jax.process_index() * per : (jax.process_index() + 1) * per], length
        )


def make_data(config):
    """`(train_iter, eval_factory, test_factory, vocab_size)` from `config.data` (`name`,
    `data_dir`, `num_segments`, `segment_len`, `batch_size`, `eval_batches`)."""
    d = config.data
    data_dir = d.data_dir or None
    length = d.num_segments * d.segment_len
    train = RandomSequences(
        token_stream(d.name, "train", data_dir), length, d.batch_size, config.seed
    )
    evaluate = lambda split: (
        lambda: contiguous_sequences(
            token_stream(d.name, split, data_dir), length, d.batch_size, d.eval_batches
        )
    )
    vocab_size = int(registry.info(d.name, data_dir)["vocab_size"])
    return train, evaluate("validation"), evaluate("test"), vocab_size
